"""Generate a demo world as numpy arrays and strings, with hidden tastes that drive its interactions.

No Django here: ``store.py`` writes what this module makes. Everything is indexed from 0 within its
own table (user 0, startup 0, developer 0 ...); the store turns indices into primary keys.

How the interactions come about (what a recommender should be able to find again):
- Every event belongs to a *channel* (developer→position, investor→startup, founder→developer ...).
  The acting user is drawn in proportion to a long-tailed activity level, and is shown a handful of
  candidates drawn in proportion to a long-tailed item popularity.
- In a big catalog people search rather than scroll: of a type with more than SCROLLABLE_ITEMS items, a
  growing share of the events (``searched_share``) draws its candidates from one industry's items only (again
  by popularity), the industry the user looks in: for developers and investors drawn by their affinity (the
  hidden industry included), for founders their startup's (``Exposure``). What a user is shown then follows
  their tastes, as on a real platform, so the events stay learnable at a million items; a smaller world is
  drawn exactly as before searches existed.
- Each candidate gets a *match* in [0, 1] from the user's tastes: for a developer and a position, how
  many of the required skills the developer has, how much the developer likes the industry (stated
  preferences plus one hidden industry that no profile mentions), remote and location fit, salary
  against expectation, experience against requirement; for an investor and a startup, stage, industry
  and check size; and so on (see the ``_match_*`` functions).
- The user picks the candidate with the best ``TASTE_STRENGTH * match + Gumbel noise`` (a softmax
  choice), or, in a dismiss event, the worst. The kind of a chosen item escalates with its match:
  a good match is more often liked, saved, applied to or contacted; a poor one is only viewed.
- The other side answers back (``make_acceptances``): the target of an application or a contact accepts it
  (an ``accept`` event, by the target) with ``accept_chance`` of the target's own match of whoever asked, a
  logistic as steep as the choices, 1 hour to 7 days later (or after the accepter joined, if that is later).
  A developer's application is accepted by the lead founder of the position's startup; a founder's contact by
  the developer or investor (who accepts the founder's first startup); an investor's contact of a startup by
  its lead founder.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import vocabulary as vocab

DAY = 86_400
INTERACTION_WINDOW_DAYS = 180
CANDIDATES_PER_EVENT = 16
TASTE_STRENGTH = 6.0
HIDDEN_INDUSTRY_AFFINITY = 0.7  # how much a person likes the one industry their profile does not mention
# About as many items of a type as a person scrolls through; beyond it most of what they see is a search's.
SCROLLABLE_ITEMS = 5_000
EVENT_CHUNK = 50_000  # events scored at once; bounds memory at about 100 MB

DEVELOPER, FOUNDER, INVESTOR = 0, 1, 2
ROLE_SHARE = {FOUNDER: 0.15, INVESTOR: 0.07}  # developers are the rest
POSITION, STARTUP, DEVELOPER_TARGET, INVESTOR_TARGET = 0, 1, 2, 3
KINDS = ("view", "like", "save", "apply", "follow", "invest_interest", "contact", "dismiss", "accept")
KIND = {name: code for code, name in enumerate(KINDS)}
POSITION_STATUSES = ("open", "interviewing", "filled", "closed")
POSITION_STATUS_SHARE = (0.72, 0.14, 0.09, 0.05)

# The kinds each role makes on each target type; every generated interaction obeys this table.
ROLE_RULES: dict[tuple[str, str], tuple[str, ...]] = {
    ("developer", "position"): ("view", "like", "save", "apply", "dismiss"),
    ("developer", "startup"): ("view", "follow", "like", "accept"),
    ("investor", "startup"): ("view", "follow", "invest_interest", "contact", "dismiss", "accept"),
    ("founder", "developer"): ("view", "contact", "like", "accept"),
    ("founder", "investor"): ("view", "contact", "like", "accept"),
}
HOUR = 3_600
ASKING_KINDS = ("apply", "contact")  # the events whose target may accept them (``asked_events`` says which)
ACCEPT_DELAY = (HOUR, 7 * DAY)  # an accept comes this long after the event it answers (uniform)
# The target's match at which half of the applications and contacts are accepted. At 0.40 the default demo
# world (seed_demo's defaults, seed 0) accepts 194 of its 456 (42.5%; seeds 1 and 2: 43.8%, 44.2%), counting
# only accepts before the clock stops: applications 85 of 291 (29%: a founder's match of an applicant, mean
# 0.25, is lower than the applicant's of the position), founders' contacts of developers 24 of 47 (51%) and of
# investors 31 of 37 (84%), investors' contacts of startups 54 of 81 (67%).
ACCEPT_MIDPOINT = 0.40


@dataclass(frozen=True)
class WorldSize:
    users: int
    positions: int
    startups: int
    interactions: int


@dataclass
class SkillSets:
    """One set of skill indices per row: ``indices`` padded with -1, and the same sets as bitsets."""

    indices: np.ndarray  # (n, max_skills) int16, -1 = none
    bits: np.ndarray  # (n, words) uint64
    counts: np.ndarray  # (n,) int

    def names(self, row: int, skill_names: list[str]) -> list[str]:
        return [skill_names[i] for i in self.indices[row] if i >= 0]


@dataclass
class People:
    roles: np.ndarray  # (users,) role code per user, in user order
    first_names: list[str]
    last_names: list[str]
    usernames: list[str]
    joined: np.ndarray  # (users,) unix seconds
    developers: np.ndarray  # user index of each developer, founder, investor
    founders: np.ndarray
    investors: np.ndarray


@dataclass
class Developers:
    track: np.ndarray
    years: np.ndarray
    preferred_industries: list[np.ndarray]
    affinity: np.ndarray  # (n, industries) float32: 1 stated, HIDDEN_INDUSTRY_AFFINITY hidden, else 0
    remote_preference: np.ndarray  # index into vocab.REMOTE_PREFERENCES
    desired_salary: np.ndarray
    location: np.ndarray  # index into vocab.LOCATIONS
    skills: SkillSets
    headline: list[str]
    popularity: np.ndarray


@dataclass
class Founders:
    years: np.ndarray
    location: np.ndarray
    skills: SkillSets
    industry: np.ndarray  # of their first startup (or of the one they plan); drives what they look for
    stage: np.ndarray
    needs: np.ndarray  # (n, words) uint64: skills their startups require


@dataclass
class Investors:
    firm: list[str]
    preferred_industries: list[np.ndarray]
    affinity: np.ndarray
    stages: np.ndarray  # (n, stages) bool
    check_min: np.ndarray
    check_max: np.ndarray
    location: np.ndarray
    popularity: np.ndarray


@dataclass
class Startups:
    name: list[str]
    industry: np.ndarray
    stage: np.ndarray
    team_size: np.ndarray
    funding_raised: np.ndarray
    next_round: np.ndarray
    raising: np.ndarray  # bool: raising next_round now
    round_closes: np.ndarray  # unix seconds the round closes (raising ones)
    location: np.ndarray
    remote_friendly: np.ndarray
    description: list[str]
    skills: SkillSets
    founder_pairs: np.ndarray  # (k, 2): (startup index, founder index), unique
    created: np.ndarray
    popularity: np.ndarray


@dataclass
class Positions:
    startup: np.ndarray
    title: list[str]
    description: list[str]
    skills: SkillSets
    salary_min: np.ndarray  # -1 = not published
    salary_max: np.ndarray
    remote: np.ndarray
    years_required: np.ndarray
    status: np.ndarray  # index into POSITION_STATUSES
    created: np.ndarray
    popularity: np.ndarray
    openings: np.ndarray  # 1-3 hires


@dataclass
class Interactions:
    user: np.ndarray  # user index
    kind: np.ndarray  # index into KINDS
    target_type: np.ndarray  # POSITION, STARTUP, DEVELOPER_TARGET or INVESTOR_TARGET
    target: np.ndarray  # index within the target's table (developer / investor: within that role)
    created: np.ndarray  # unix seconds, ascending


class Vocabulary:
    """The vocabulary as index arrays: skills by industry and by track, location weights."""

    def __init__(self) -> None:
        skills = vocab.all_skills()
        self.skill_names = [name for name, _ in skills]
        self.skill_industry = [industry for _, industry in skills]
        index = {name: i for i, name in enumerate(self.skill_names)}
        self.industry_names = [industry.name for industry in vocab.INDUSTRIES]
        self.industry_share = _normalized(np.array([industry.share for industry in vocab.INDUSTRIES]))
        self.industry_skills = _skill_rows([industry.skills for industry in vocab.INDUSTRIES], index)
        self.track_skills = _skill_rows([track.skills for track in vocab.TRACKS], index)
        self.general_skills = _normalized(self.track_skills.sum(axis=0))
        self.track_share = _normalized(np.array([track.share for track in vocab.TRACKS]))
        self.location_names = [name for name, _ in vocab.LOCATIONS]
        self.location_share = _normalized(np.array([weight for _, weight in vocab.LOCATIONS]))


def _normalized(weights: np.ndarray) -> np.ndarray:
    return weights / weights.sum(axis=-1, keepdims=True)


def _skill_rows(groups: list[tuple[str, ...]], index: dict[str, int]) -> np.ndarray:
    """(groups, skills) matrix, each row a uniform distribution over the group's skills."""
    rows = np.zeros((len(groups), len(index)))
    for row, group in enumerate(groups):
        rows[row, [index[name] for name in group]] = 1.0
    return _normalized(rows)


def rng_for(seed: int, phase: str) -> np.random.Generator:
    """An independent stream per phase, so that e.g. asking for more interactions leaves people unchanged."""
    return np.random.default_rng([seed, *phase.encode()])


def sample_without_replacement(rng: np.random.Generator, weights: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Row-wise weighted sampling of ``counts[i]`` distinct columns (Gumbel top-k); -1 pads the rest."""
    keys = np.log(np.maximum(weights, 1e-12)) + rng.gumbel(size=weights.shape)
    width = int(counts.max(initial=0))
    if 0 < width < keys.shape[1]:  # only the best ``width`` columns are needed: partition, then sort those
        best = np.argpartition(-keys, width - 1, axis=1)[:, :width]
        order = np.take_along_axis(best, np.argsort(-np.take_along_axis(keys, best, axis=1), axis=1), axis=1)
    else:
        order = np.argsort(-keys, axis=1, kind="stable")[:, :width]
    return np.where(np.arange(width) < counts[:, None], order, -1)


def make_skill_sets(rng: np.random.Generator, weights: np.ndarray, counts: np.ndarray) -> SkillSets:
    n, n_skills = weights.shape
    indices = np.full((n, int(counts.max(initial=0))), -1, dtype=np.int16)
    for start in range(0, n, 20_000):  # the Gumbel keys are (rows, skills) floats; keep them small
        stop = start + 20_000
        indices[start:stop] = sample_without_replacement(rng, weights[start:stop], counts[start:stop])
    words = (n_skills + 63) // 64
    members = np.zeros((n, words * 64), dtype=bool)
    rows, cols = np.nonzero(indices >= 0)
    members[rows, indices[rows, cols]] = True
    bits = np.packbits(members, axis=1, bitorder="little").view(np.uint64)
    return SkillSets(indices=indices, bits=bits, counts=counts.astype(np.int64))


def overlap(a_bits: np.ndarray, b_bits: np.ndarray) -> np.ndarray:
    """Number of skills two sets share; broadcasts over leading axes."""
    return np.bitwise_count(a_bits & b_bits).sum(axis=-1)


def _preferred_industries(rng, n: int, vocabulary: Vocabulary) -> tuple[list[np.ndarray], np.ndarray]:
    """Stated industry preferences (1-3 each) and the hidden affinity over all industries."""
    n_industries = len(vocabulary.industry_names)
    counts = rng.choice([1, 2, 3], size=n, p=[0.4, 0.4, 0.2])
    # One extra, unstated industry each: ranked right after the stated ones.
    ranked = sample_without_replacement(rng, np.tile(vocabulary.industry_share, (n, 1)), counts + 1)
    affinity = np.zeros((n, n_industries), dtype=np.float32)
    rows = np.arange(n)
    stated = []
    for column in range(ranked.shape[1]):
        is_stated = column < counts
        is_hidden = column == counts
        affinity[rows[is_stated], ranked[is_stated, column]] = 1.0
        affinity[rows[is_hidden], ranked[is_hidden, column]] = HIDDEN_INDUSTRY_AFFINITY
    for row in range(n):
        stated.append(np.sort(ranked[row, : counts[row]]))
    return stated, affinity


def _unique_usernames(first: list[str], last: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    usernames = []
    for first_name, last_name in zip(first, last, strict=True):
        base = f"{first_name}.{last_name}".lower().replace(" ", "")
        seen[base] = seen.get(base, 0) + 1
        usernames.append(base if seen[base] == 1 else f"{base}{seen[base]}")
    return usernames


def role_counts(n_users: int, n_startups: int) -> dict[int, int]:
    """How many of each role; at least one founder whenever there are startups to own."""
    founders = round(ROLE_SHARE[FOUNDER] * n_users)
    if n_startups and n_users:
        founders = max(founders, 1)
    investors = min(round(ROLE_SHARE[INVESTOR] * n_users), n_users - founders)
    return {DEVELOPER: n_users - founders - investors, FOUNDER: founders, INVESTOR: investors}


def make_people(seed: int, size: WorldSize, end: int) -> People:
    rng = rng_for(seed, "people")
    counts = role_counts(size.users, size.startups)
    roles = rng.permutation(np.repeat([DEVELOPER, FOUNDER, INVESTOR], [counts[DEVELOPER], counts[FOUNDER],
                                                                       counts[INVESTOR]]))
    first = [vocab.FIRST_NAMES[i] for i in rng.integers(len(vocab.FIRST_NAMES), size=size.users)]
    last = [vocab.LAST_NAMES[i] for i in rng.integers(len(vocab.LAST_NAMES), size=size.users)]
    joined = end - rng.integers(10 * DAY, 400 * DAY, size=size.users)
    return People(
        roles=roles, first_names=first, last_names=last, usernames=_unique_usernames(first, last), joined=joined,
        developers=np.flatnonzero(roles == DEVELOPER), founders=np.flatnonzero(roles == FOUNDER),
        investors=np.flatnonzero(roles == INVESTOR),
    )


def _years_experience(rng, n: int, minimum: int = 0) -> np.ndarray:
    return np.clip(np.round(rng.gamma(2.0, 3.2, size=n)) + minimum, 0, 40).astype(np.int64)


# (years of experience from, headline prefix) for developers' headlines
HEADLINE_LEVELS = ((0, "Junior"), (2, ""), (5, "Senior"), (9, "Staff"))


def _seniority_for_years(years: np.ndarray) -> list[str]:
    starts = np.array([start for start, _ in HEADLINE_LEVELS])
    return [HEADLINE_LEVELS[i][1] for i in np.searchsorted(starts, years, side="right") - 1]


def make_developers(seed: int, n: int, vocabulary: Vocabulary) -> Developers:
    rng = rng_for(seed, "developers")
    track = rng.choice(len(vocab.TRACKS), size=n, p=vocabulary.track_share)
    years = _years_experience(rng, n)
    preferred, affinity = _preferred_industries(rng, n, vocabulary)
    stated = (affinity == 1.0).astype(np.float64)
    # Developers know the general skills of their track and some skills of the industries they chose.
    weights = (0.5 * _normalized(stated) @ vocabulary.industry_skills
               + 0.45 * vocabulary.track_skills[track] + 0.05 / len(vocabulary.skill_names))
    skills = make_skill_sets(rng, weights, 4 + np.minimum(years, 12) // 3 + rng.integers(0, 3, size=n))
    base = np.array([t.base_salary for t in vocab.TRACKS])[track]
    salary = base * (0.72 + 0.05 * np.minimum(years, 16)) * rng.lognormal(0.0, 0.12, size=n)
    seniority = _seniority_for_years(years)
    headline = []
    for row in range(n):
        title = f"{seniority[row]} {vocab.TRACKS[track[row]].titles[0]}".strip()
        headline.append(f"{title} · {', '.join(skills.names(row, vocabulary.skill_names)[:3])}")
    return Developers(
        track=track, years=years, preferred_industries=preferred, affinity=affinity,
        remote_preference=rng.choice(len(vocab.REMOTE_PREFERENCES), size=n, p=vocab.REMOTE_PREFERENCE_SHARE),
        desired_salary=(np.round(salary, -3)).astype(np.int64),
        location=rng.choice(len(vocabulary.location_names), size=n, p=vocabulary.location_share),
        skills=skills, headline=headline, popularity=rng.lognormal(0.0, 0.8, size=n) * (1 + years / 10),
    )


def make_investors(seed: int, n: int, vocabulary: Vocabulary) -> Investors:
    rng = rng_for(seed, "investors")
    preferred, affinity = _preferred_industries(rng, n, vocabulary)
    first_stage = rng.choice(len(vocab.STAGES), size=n, p=[0.12, 0.25, 0.3, 0.18, 0.1, 0.05])
    last_stage = np.minimum(first_stage + rng.choice([0, 1, 2], size=n, p=[0.3, 0.45, 0.25]), len(vocab.STAGES) - 1)
    stage_index = np.arange(len(vocab.STAGES))
    stages = (stage_index >= first_stage[:, None]) & (stage_index <= last_stage[:, None])
    next_round = np.array(vocab.STAGE_NEXT_ROUND)
    check_min = np.maximum(np.round(next_round[first_stage] * 0.05 * rng.lognormal(0, 0.3, size=n), -4), 10_000)
    check_max = np.maximum(np.round(next_round[last_stage] * 0.25 * rng.lognormal(0, 0.3, size=n), -4), check_min)
    firms = [
        "" if rng.random() < 0.25 else  # angels invest in their own name
        f"{vocab.FIRM_FIRST_WORDS[rng.integers(len(vocab.FIRM_FIRST_WORDS))]} "
        f"{vocab.FIRM_LAST_WORDS[rng.integers(len(vocab.FIRM_LAST_WORDS))]}"
        for _ in range(n)
    ]
    return Investors(
        firm=firms, preferred_industries=preferred, affinity=affinity, stages=stages,
        check_min=check_min.astype(np.int64), check_max=check_max.astype(np.int64),
        location=rng.choice(len(vocabulary.location_names), size=n, p=vocabulary.location_share),
        popularity=rng.lognormal(0.0, 0.9, size=n),
    )


def _startup_name(rng, industry: vocab.IndustryWords) -> str:
    root = industry.name_roots[rng.integers(len(industry.name_roots))]
    style = rng.integers(3)
    if style == 0:
        return root + vocab.STARTUP_NAME_SUFFIXES[rng.integers(len(vocab.STARTUP_NAME_SUFFIXES))]
    prefix = vocab.STARTUP_NAME_PREFIXES[rng.integers(len(vocab.STARTUP_NAME_PREFIXES))]
    return f"{prefix}{root}" if style == 1 else f"{prefix} {root}"


def make_startups(seed: int, n: int, n_founders: int, end: int, vocabulary: Vocabulary) -> Startups:
    rng = rng_for(seed, "startups")
    industry = rng.choice(len(vocab.INDUSTRIES), size=n, p=vocabulary.industry_share)
    stage = rng.choice(len(vocab.STAGES), size=n, p=vocab.STAGE_SHARE)
    team = np.maximum(1, np.round(np.array(vocab.STAGE_TEAM)[stage] * rng.lognormal(0, 0.4, size=n)))
    funding = np.round(np.array(vocab.STAGE_FUNDING)[stage] * rng.lognormal(0, 0.5, size=n), -4)
    weights = (0.7 * vocabulary.industry_skills[industry] + 0.25 * vocabulary.general_skills
               + 0.05 / len(vocabulary.skill_names))
    skills = make_skill_sets(rng, weights, rng.integers(4, 9, size=n))
    location = rng.choice(len(vocabulary.location_names), size=n, p=vocabulary.location_share)
    names, descriptions = [], []
    for row in range(n):
        words = vocab.INDUSTRIES[industry[row]]
        name = _startup_name(rng, words)
        product = words.products[rng.integers(len(words.products))]
        customer = words.customers[rng.integers(len(words.customers))]
        names.append(name)
        descriptions.append(
            f"{name} builds {product} for {customer} ({words.name.lower()}). "
            f"{vocab.STAGE_SENTENCES[stage[row]]} "
            f"Our stack: {', '.join(skills.names(row, vocabulary.skill_names))}."
        )
    # Drawn from a stream of their own, so that the draws before (and the worlds seeded so far) are unchanged.
    rounds = rng_for(seed, "fundraising")
    return Startups(
        name=names, industry=industry, stage=stage, team_size=team.astype(np.int64),
        funding_raised=funding.astype(np.int64),
        next_round=np.round(np.array(vocab.STAGE_NEXT_ROUND)[stage] * rng.lognormal(0, 0.3, size=n), -4),
        raising=rounds.random(size=n) < np.array(vocab.STAGE_RAISING_SHARE)[stage],
        round_closes=end + rounds.integers(14 * DAY, 180 * DAY, size=n),
        location=location, remote_friendly=rng.random(size=n) < 0.55, description=descriptions, skills=skills,
        founder_pairs=_assign_founders(rng, n, n_founders),
        created=end - rng.integers(60 * DAY, 1500 * DAY, size=n), popularity=rng.lognormal(0.0, 1.0, size=n),
    )


def _assign_founders(rng, n_startups: int, n_founders: int) -> np.ndarray:
    """Every startup gets a lead founder (spread evenly) and sometimes one or two co-founders."""
    if not n_startups:
        return np.zeros((0, 2), dtype=np.int64)
    startups = np.arange(n_startups)
    lead = rng.permutation(n_startups) % n_founders
    extra = rng.choice([0, 1, 2], size=n_startups, p=[0.55, 0.35, 0.10])
    co_startups = np.repeat(startups, extra)
    co_founders = rng.integers(n_founders, size=co_startups.size)
    pairs = np.concatenate([np.stack([startups, lead], 1), np.stack([co_startups, co_founders], 1)])
    _, first = np.unique(pairs, axis=0, return_index=True)
    return pairs[np.sort(first)]  # distinct pairs, lead founders first


def make_founders(seed: int, n: int, startups: Startups, vocabulary: Vocabulary) -> Founders:
    rng = rng_for(seed, "founders")
    # A founder's first startup (the lead rows come first) says what they work on and look for.
    industry = rng.choice(len(vocab.INDUSTRIES), size=n, p=vocabulary.industry_share)
    stage = np.zeros(n, dtype=np.int64)
    location = rng.choice(len(vocabulary.location_names), size=n, p=vocabulary.location_share)
    words = (len(vocabulary.skill_names) + 63) // 64
    needs = np.zeros((n, words), dtype=np.uint64)
    has_startup = np.zeros(n, dtype=bool)
    for startup, founder in startups.founder_pairs[::-1]:  # reversed, so the first startup wins
        industry[founder], stage[founder] = startups.industry[startup], startups.stage[startup]
        location[founder] = startups.location[startup]
        has_startup[founder] = True
    np.bitwise_or.at(needs, startups.founder_pairs[:, 1], startups.skills.bits[startups.founder_pairs[:, 0]])
    track = rng.choice(len(vocab.TRACKS), size=n, p=vocabulary.track_share)
    weights = (0.55 * vocabulary.industry_skills[industry] + 0.4 * vocabulary.track_skills[track]
               + 0.05 / len(vocabulary.skill_names))
    skills = make_skill_sets(rng, weights, rng.integers(3, 8, size=n))
    needs[~has_startup] = skills.bits[~has_startup]  # no startup yet: they look for people like themselves
    return Founders(years=_years_experience(rng, n, minimum=2), location=location, skills=skills,
                    industry=industry, stage=stage, needs=needs)


def make_positions(seed: int, n: int, startups: Startups, end: int, vocabulary: Vocabulary) -> Positions:
    rng = rng_for(seed, "positions")
    # Bigger teams hire more; a world without positions may have no startups to weigh at all.
    startup = (rng.choice(len(startups.name), size=n, p=_normalized(np.sqrt(startups.team_size))) if n
               else np.zeros(0, dtype=np.int64))
    track = rng.choice(len(vocab.TRACKS), size=n, p=vocabulary.track_share)
    level = rng.choice(len(vocab.SENIORITY), size=n, p=[s[4] for s in vocab.SENIORITY])
    industry = startups.industry[startup]
    weights = (0.4 * vocabulary.industry_skills[industry] + 0.55 * vocabulary.track_skills[track]
               + 0.05 / len(vocabulary.skill_names))
    skills = make_skill_sets(rng, weights, rng.integers(3, 8, size=n))
    salary = (np.array([t.base_salary for t in vocab.TRACKS])[track]
              * np.array([s[3] for s in vocab.SENIORITY])[level]
              * np.array(vocab.STAGE_SALARY_FACTOR)[startups.stage[startup]] * rng.lognormal(0, 0.1, size=n))
    published = rng.random(size=n) < 0.9
    salary_min = np.where(published, np.round(salary * 0.9, -3), -1).astype(np.int64)
    salary_max = np.where(published, np.round(salary * 1.15, -3), -1).astype(np.int64)
    years_from = np.array([s[1] for s in vocab.SENIORITY])[level]
    years_to = np.array([s[2] for s in vocab.SENIORITY])[level]
    remote = rng.random(size=n) < np.where(startups.remote_friendly[startup], 0.7, 0.12)
    titles, descriptions = [], []
    about = [description.split(". ")[0] for description in startups.description]  # each startup's first line
    for row in range(n):
        track_words = vocab.TRACKS[track[row]]
        title = f"{vocab.SENIORITY[level[row]][0]} {track_words.titles[rng.integers(len(track_words.titles))]}"
        titles.append(title.strip())
        duty = track_words.duties[rng.integers(len(track_words.duties))]
        company = startups.name[startup[row]]
        descriptions.append(
            f"{company} is hiring a {titles[-1]} to {duty}. "
            f"You will work with {', '.join(skills.names(row, vocabulary.skill_names))}. "
            f"{about[startup[row]]}."
        )
    return Positions(
        startup=startup, title=titles, description=descriptions, skills=skills, salary_min=salary_min,
        salary_max=salary_max, remote=remote, years_required=rng.integers(years_from, years_to + 1),
        status=rng.choice(len(POSITION_STATUSES), size=n, p=POSITION_STATUS_SHARE),
        created=np.maximum(end - rng.integers(5 * DAY, 240 * DAY, size=n), startups.created[startup] + DAY),
        popularity=startups.popularity[startup] ** 0.6 * rng.lognormal(0.0, 0.8, size=n),
        openings=rng_for(seed, "openings").choice([1, 2, 3], size=n, p=vocab.OPENINGS_SHARE),
    )


@dataclass
class World:
    size: WorldSize
    end: int  # unix seconds; every timestamp lies before it
    vocabulary: Vocabulary
    people: People
    developers: Developers
    founders: Founders
    investors: Investors
    startups: Startups
    positions: Positions


def make_world(seed: int, size: WorldSize, end: int, progress: Callable[[str], None] | None = None) -> World:
    """Everything but the interactions (see ``make_interactions``); ``progress(part)`` after each part (a
    million people take a minute)."""
    done = progress or (lambda part: None)
    vocabulary = Vocabulary()
    people = make_people(seed, size, end)
    done("people")
    startups = make_startups(seed, size.startups, len(people.founders), end, vocabulary)
    done("startups")
    developers = make_developers(seed, len(people.developers), vocabulary)
    done("developers")
    founders = make_founders(seed, len(people.founders), startups, vocabulary)
    investors = make_investors(seed, len(people.investors), vocabulary)
    done("founders and investors")
    positions = make_positions(seed, size.positions, startups, end, vocabulary)
    done("positions")
    return World(size=size, end=end, vocabulary=vocabulary, people=people, developers=developers,
                 founders=founders, investors=investors, startups=startups, positions=positions)


# --- matches: (events,) actors against (events, candidates) items, each in [0, 1] -------------------

# Remote fit by developer preference (rows: remote, hybrid, onsite, any) for a position that is
# (remote, on-site in the developer's city, on-site elsewhere).
_REMOTE_FIT = np.array([
    [1.0, 0.2, 0.0],
    [0.6, 1.0, 0.3],
    [0.2, 1.0, 0.3],
    [0.8, 0.8, 0.5],
])


def _skill_fit(have_bits: np.ndarray, need_bits: np.ndarray, need_counts: np.ndarray) -> np.ndarray:
    """Share of the needed skills that the actor has."""
    return overlap(have_bits[:, None, :], need_bits) / np.maximum(need_counts, 1)


def _check_fit(check_min, check_max, amount) -> np.ndarray:
    """1 inside the check range, falling to 0 four times outside it."""
    distance = np.maximum(np.log(check_min / np.maximum(amount, 1.0)), np.log(amount / np.maximum(check_max, 1.0)))
    return np.clip(1.0 - np.maximum(distance, 0.0) / np.log(4.0), 0.0, 1.0)


def _match_developer_position(world: World, dev: np.ndarray, pos: np.ndarray) -> np.ndarray:
    d, p = world.developers, world.positions
    skill = _skill_fit(d.skills.bits[dev], p.skills.bits[pos], p.skills.counts[pos])
    industry = d.affinity[dev[:, None], world.startups.industry[p.startup[pos]]]
    same_city = world.startups.location[p.startup[pos]] == d.location[dev][:, None]
    where = np.where(p.remote[pos], 0, np.where(same_city, 1, 2))
    remote = _REMOTE_FIT[d.remote_preference[dev][:, None], where]
    desired = d.desired_salary[dev][:, None]
    salary = np.where(p.salary_max[pos] < 0, 0.6,
                      np.clip(1.0 - (desired - p.salary_max[pos]) / (0.3 * desired), 0.0, 1.0))
    experience = np.clip(1.0 - (p.years_required[pos] - d.years[dev][:, None]) / 5.0, 0.0, 1.0)
    return 0.45 * skill + 0.25 * industry + 0.1 * remote + 0.1 * salary + 0.1 * experience


def _match_developer_startup(world: World, dev: np.ndarray, st: np.ndarray) -> np.ndarray:
    d, s = world.developers, world.startups
    skill = _skill_fit(d.skills.bits[dev], s.skills.bits[st], s.skills.counts[st])
    industry = d.affinity[dev[:, None], s.industry[st]]
    remote = np.where(s.remote_friendly[st], 1.0, (d.remote_preference[dev] != 0)[:, None] * 0.6)
    return 0.35 * skill + 0.5 * industry + 0.15 * remote


def _match_investor_startup(world: World, inv: np.ndarray, st: np.ndarray) -> np.ndarray:
    i, s = world.investors, world.startups
    stage = i.stages[inv[:, None], s.stage[st]]
    industry = i.affinity[inv[:, None], s.industry[st]]
    check = _check_fit(i.check_min[inv][:, None], i.check_max[inv][:, None], 0.15 * s.next_round[st])
    return 0.3 * stage + 0.4 * industry + 0.3 * check


def _match_founder_developer(world: World, fou: np.ndarray, dev: np.ndarray) -> np.ndarray:
    f, d = world.founders, world.developers
    have = d.skills.bits[dev]  # (E, C, words)
    need_counts = np.bitwise_count(f.needs[fou]).sum(axis=-1)[:, None]
    skill = overlap(f.needs[fou][:, None, :], have) / np.maximum(need_counts, 1)
    industry = d.affinity[dev, f.industry[fou][:, None]]
    experience = np.minimum(d.years[dev], 10) / 10
    return 0.55 * skill + 0.25 * industry + 0.2 * experience


def _match_founder_investor(world: World, fou: np.ndarray, inv: np.ndarray) -> np.ndarray:
    f, i = world.founders, world.investors
    stage = i.stages[inv, f.stage[fou][:, None]]
    industry = i.affinity[inv, f.industry[fou][:, None]]
    round_size = 0.15 * np.array(vocab.STAGE_NEXT_ROUND)[f.stage[fou]][:, None]
    check = _check_fit(i.check_min[inv], i.check_max[inv], round_size)
    return 0.35 * stage + 0.4 * industry + 0.25 * check


@dataclass(frozen=True)
class Channel:
    role: int
    target_type: int
    share: float  # of all events, before channels without actors or targets are dropped
    match: Callable[[World, np.ndarray, np.ndarray], np.ndarray]  # (actors (E,), candidates (E, C)) -> (E, C)
    engaged: tuple[tuple[str, float, float], ...]  # (kind, probability at match 0, extra at match 1)
    dismiss_rate: float = 0.0


CHANNELS = (
    Channel(DEVELOPER, POSITION, 0.60, _match_developer_position,
            (("like", 0.03, 0.17), ("save", 0.02, 0.13), ("apply", 0.01, 0.15)), dismiss_rate=0.10),
    Channel(DEVELOPER, STARTUP, 0.15, _match_developer_startup, (("follow", 0.03, 0.17), ("like", 0.04, 0.16))),
    Channel(INVESTOR, STARTUP, 0.15, _match_investor_startup,
            (("follow", 0.04, 0.16), ("invest_interest", 0.01, 0.12), ("contact", 0.01, 0.11)), dismiss_rate=0.12),
    Channel(FOUNDER, DEVELOPER_TARGET, 0.07, _match_founder_developer, (("like", 0.03, 0.12), ("contact", 0.02, 0.16))),
    Channel(FOUNDER, INVESTOR_TARGET, 0.03, _match_founder_investor, (("like", 0.03, 0.1), ("contact", 0.03, 0.18))),
)


def _actors(world: World, role: int) -> np.ndarray:
    return {DEVELOPER: world.people.developers, FOUNDER: world.people.founders,
            INVESTOR: world.people.investors}[role]


def _targets_popularity(world: World, target_type: int) -> np.ndarray:
    return {POSITION: world.positions.popularity, STARTUP: world.startups.popularity,
            DEVELOPER_TARGET: world.developers.popularity, INVESTOR_TARGET: world.investors.popularity}[target_type]


def _target_industries(world: World, target_type: int) -> np.ndarray:
    """(targets,) the industry a search finds each target under: a position's or startup's (its startup's
    industry), a developer's or investor's first stated one."""
    if target_type == POSITION:
        return world.startups.industry[world.positions.startup]
    if target_type == STARTUP:
        return world.startups.industry
    people = world.developers if target_type == DEVELOPER_TARGET else world.investors
    return np.argmax(people.affinity == 1.0, axis=1)


def _search_weights(world: World, role: int, actor: np.ndarray) -> np.ndarray:
    """(actors, industries) how likely each actor searches each industry (unnormalised)."""
    if role == FOUNDER:
        weights = np.zeros((len(actor), len(world.vocabulary.industry_names)))
        weights[np.arange(len(actor)), world.founders.industry[actor]] = 1.0
        return weights
    people = world.developers if role == DEVELOPER else world.investors
    return people.affinity[actor].astype(np.float64)


def searched_share(n_items: int) -> float:
    """The share of events whose candidates come from a search, for a type of ``n_items`` items: none up to
    SCROLLABLE_ITEMS, then 1 - SCROLLABLE_ITEMS / n (0.875 at 40,000 items, 0.994 at 800,000)."""
    return max(0.0, 1.0 - SCROLLABLE_ITEMS / n_items) if n_items else 0.0


class Exposure:
    """What a channel's events show: candidates by popularity, from the whole type or, in a search, from the
    items of one industry (see the module's docstring)."""

    def __init__(self, world: World, channel: Channel) -> None:
        self.world, self.channel = world, channel
        popularity = _targets_popularity(world, channel.target_type)
        self.item_p = _normalized(popularity)
        self.share = searched_share(len(popularity))
        self.industry = _target_industries(world, channel.target_type)
        n_industries = len(world.vocabulary.industry_names)
        # Items sorted by industry, with their cumulative popularity: a search of industry i draws a uniform
        # number within that industry's stretch of the cumulative sum.
        self.order = np.argsort(self.industry, kind="stable")
        self.cumulative = np.concatenate([[0.0], np.cumsum(self.item_p[self.order])])
        bounds = np.searchsorted(self.industry[self.order], np.arange(n_industries + 1))
        self.low = self.cumulative[bounds[:-1]]
        self.industry_p = self.cumulative[bounds[1:]] - self.low  # each industry's share of the type's popularity

    def draw(self, rng: np.random.Generator, actor: np.ndarray) -> np.ndarray:
        """(len(actor), CANDIDATES_PER_EVENT) candidate indices for events by ``actor`` (within their role)."""
        shape = (len(actor), CANDIDATES_PER_EVENT)
        if self.share == 0.0:  # the draws of a world from before searches: a small world is what it always was
            return rng.choice(len(self.item_p), size=shape, p=self.item_p)
        # Each event draws uniform points within a stretch of the cumulative popularity: all of it, or in a
        # search its industry's (nobody searches an industry with nothing of this type).
        low, width = np.zeros(len(actor)), np.ones(len(actor))
        searching = np.flatnonzero(rng.random(size=len(actor)) < self.share)
        weights = self._weights(actor[searching])
        industry = np.argmax(np.log(np.maximum(weights, 1e-300)) + rng.gumbel(size=weights.shape), axis=1)
        can_search = weights.sum(axis=1) > 0
        low[searching[can_search]] = self.low[industry[can_search]]
        width[searching[can_search]] = self.industry_p[industry[can_search]]
        point = low[:, None] + rng.random(size=shape) * width[:, None]
        found = np.searchsorted(self.cumulative, point, side="right") - 1
        return self.order[np.clip(found, 0, len(self.order) - 1)]

    def probability(self, actor: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(len(actor), targets' columns) how likely one candidate of an event by each actor is each target."""
        p = self.item_p[targets]
        if self.share == 0.0:
            return p
        weights = self._weights(actor)
        total = weights.sum(axis=1, keepdims=True)
        industry = self.industry[targets]
        chance = np.take_along_axis(weights, industry, axis=1) / np.maximum(total, 1e-300)
        in_search = chance * p / np.maximum(self.industry_p[industry], 1e-300)
        return np.where(total > 0, (1 - self.share) * p + self.share * in_search, p)

    def _weights(self, actor: np.ndarray) -> np.ndarray:
        weights = _search_weights(self.world, self.channel.role, actor)
        return np.where(self.industry_p > 0, weights, 0.0)


def _targets_created(world: World, target_type: int) -> np.ndarray:
    people = world.people
    return {POSITION: world.positions.created, STARTUP: world.startups.created,
            DEVELOPER_TARGET: people.joined[people.developers],
            INVESTOR_TARGET: people.joined[people.investors]}[target_type]


def usable_channels(world: World) -> list[Channel]:
    """The channels with both someone to act and something to act on."""
    return [c for c in CHANNELS if len(_actors(world, c.role)) and len(_targets_popularity(world, c.target_type))]


def channel_event_counts(world: World, n_events: int, rng: np.random.Generator) -> list[tuple[Channel, int]]:
    """Split the events over the usable channels in proportion to their shares."""
    usable = usable_channels(world)
    if not usable:
        return []
    counts = rng.multinomial(n_events, _normalized(np.array([c.share for c in usable])))
    return list(zip(usable, counts.tolist(), strict=True))


def applicants_per_position(world: World, interactions: Interactions) -> np.ndarray:
    """(positions,) int: the distinct users who applied to each position, as Position.applicants counts them."""
    applied = (interactions.kind == KINDS.index("apply")) & (interactions.target_type == POSITION)
    pairs = np.unique(np.stack([interactions.user[applied], interactions.target[applied]], axis=1), axis=0)
    return np.bincount(pairs[:, 1], minlength=len(world.positions.title)) if len(pairs) else np.zeros(
        len(world.positions.title), dtype=np.int64)


def make_interactions(world: World, seed: int, progress: Callable[[int, int], None] | None = None) -> Interactions:
    """``world.size.interactions`` events, sorted by time; ``progress(done, total)`` after each chunk."""
    rng = rng_for(seed, "interactions")
    activity = rng.lognormal(0.0, 1.0, size=world.size.users)  # long-tailed: a few users do a lot
    parts, done = [], 0
    for channel, n_events in channel_event_counts(world, world.size.interactions, rng):
        actors = _actors(world, channel.role)
        actor_p = _normalized(activity[actors])
        exposure = Exposure(world, channel)
        for start in range(0, n_events, EVENT_CHUNK):
            size = min(EVENT_CHUNK, n_events - start)
            actor = rng.choice(len(actors), size=size, p=actor_p)
            candidates = exposure.draw(rng, actor)
            parts.append(_choose(world, channel, rng, actors[actor], actor, candidates))
            done += size
            if progress:
                progress(done, world.size.interactions)
    if not parts:
        return Interactions(*(np.zeros(0, dtype=np.int64) for _ in range(5)))
    user, kind, target_type, target, created = (np.concatenate(column) for column in zip(*parts, strict=True))
    order = np.argsort(created, kind="stable")
    asked = Interactions(user=user[order], kind=kind[order], target_type=target_type[order], target=target[order],
                         created=created[order])
    return _merged(asked, make_acceptances(world, seed, asked))


def _merged(first: Interactions, second: Interactions) -> Interactions:
    """Both sets of events in one, sorted by time (``first``'s events keep their order among themselves)."""
    columns = [np.concatenate([getattr(first, name), getattr(second, name)])
               for name in ("user", "kind", "target_type", "target", "created")]
    order = np.argsort(columns[-1], kind="stable")
    return Interactions(*(column[order] for column in columns))


def accept_chance(match):
    """How likely the target of a contact or application accepts it, from the target's own match of whoever
    asked (in [0, 1]; a float or an array): a logistic as steep as the seeder's choices, one half at
    ACCEPT_MIDPOINT. Shared by the seeder (``make_acceptances``) and the traffic simulation."""
    return 1.0 / (1.0 + np.exp(-TASTE_STRENGTH * (np.asarray(match, dtype=np.float64) - ACCEPT_MIDPOINT)))


def lead_founders(world: World) -> np.ndarray:
    """(startups,) the founder index (within founders) of each startup's lead founder, -1 for none."""
    pairs = world.startups.founder_pairs
    lead = np.full(len(world.startups.name), -1, dtype=np.int64)
    startups, first = np.unique(pairs[:, 0], return_index=True)  # the lead rows come first
    lead[startups] = pairs[first, 1]
    return lead


def first_startups(world: World) -> np.ndarray:
    """(founders,) the startup index of each founder's first startup (the one their tastes follow), -1 for none."""
    pairs = world.startups.founder_pairs
    startup = np.full(len(world.people.founders), -1, dtype=np.int64)
    founders, first = np.unique(pairs[:, 1], return_index=True)
    startup[founders] = pairs[first, 0]
    return startup


@dataclass
class Asked:
    """The applications and contacts that can be accepted, each with who would accept what."""

    event: np.ndarray  # index of the application or contact in the events it was found in
    user: np.ndarray  # the accepter's user index
    target_type: np.ndarray  # what they accept
    target: np.ndarray
    match: np.ndarray  # the accepter's own match of what they accept


def asked_events(world: World, events: Interactions) -> Asked:
    """The events of ``events`` that their target may accept (see the module's docstring), in event order."""
    people = world.people
    within_role = np.full(len(people.roles), -1, dtype=np.int64)
    for members in (people.developers, people.founders, people.investors):
        within_role[members] = np.arange(len(members))
    lead, first = lead_founders(world), first_startups(world)
    contact = events.kind == KIND["contact"]
    by_founder = contact & (people.roles[events.user] == FOUNDER)
    first_of_actor = np.full(len(events.user), -1, dtype=np.int64)  # the contacting founder's first startup
    first_of_actor[by_founder] = first[within_role[events.user[by_founder]]]
    # (which events, accepter's role table, accepter (within it), accepted type, accepted, match function)
    cases: list[tuple[np.ndarray, np.ndarray, np.ndarray, int, np.ndarray,
                      Callable[[World, np.ndarray, np.ndarray], np.ndarray]]] = []
    applied = np.flatnonzero((events.kind == KIND["apply"]) & (events.target_type == POSITION))
    founder = lead[world.positions.startup[events.target[applied]]]
    cases.append((applied, people.founders, founder, DEVELOPER_TARGET, within_role[events.user[applied]],
                  _match_founder_developer))
    for target_type, accepters, matcher in ((DEVELOPER_TARGET, people.developers, _match_developer_startup),
                                            (INVESTOR_TARGET, people.investors, _match_investor_startup)):
        chosen = np.flatnonzero(by_founder & (events.target_type == target_type) & (first_of_actor >= 0))
        cases.append((chosen, accepters, events.target[chosen], STARTUP, first_of_actor[chosen], matcher))
    invested = np.flatnonzero(contact & (events.target_type == STARTUP))
    cases.append((invested, people.founders, lead[events.target[invested]], INVESTOR_TARGET,
                  within_role[events.user[invested]], _match_founder_investor))
    parts = []
    for chosen, accepters, accepter, target_type, target, match in cases:
        keep = accepter >= 0
        chosen, accepter, target = chosen[keep], accepter[keep], target[keep]
        scores = match(world, accepter, target[:, None])[:, 0] if len(chosen) else np.zeros(0)
        parts.append((chosen, accepters[accepter], np.full(len(chosen), target_type), target, scores))
    columns = [np.concatenate(column) for column in zip(*parts, strict=True)]
    order = np.argsort(columns[0], kind="stable")
    return Asked(*(column[order] for column in columns))


def make_acceptances(world: World, seed: int, events: Interactions) -> Interactions:
    """The other side's ``accept`` events answering ``events`` (the channels' events, sorted by time), sorted by
    time: each application or contact is accepted with ``accept_chance`` of the accepter's match,
    ACCEPT_DELAY after it (or after the accepter joined, or the accepted startup was created, if later);
    accepts that would come at or after ``world.end`` are not made. Drawn from a stream
    of its own, so that a seed's other events are those it made before accepts existed."""
    rng = rng_for(seed, "acceptances")
    asked = asked_events(world, events)
    accepted = rng.random(size=len(asked.event)) < accept_chance(asked.match)
    # Answered once both are there: a founder who joined after the application (or a startup created after its
    # founder's contact) answers from then on.
    there = np.maximum(events.created[asked.event], world.people.joined[asked.user])
    for target_type in (STARTUP, DEVELOPER_TARGET, INVESTOR_TARGET):
        chosen = asked.target_type == target_type
        there[chosen] = np.maximum(there[chosen], _targets_created(world, target_type)[asked.target[chosen]])
    low, high = ACCEPT_DELAY
    created = there + rng.integers(low, high + 1, size=len(asked.event))
    keep = accepted & (created < world.end)
    order = np.argsort(created[keep], kind="stable")
    return Interactions(user=asked.user[keep][order], kind=np.full(int(keep.sum()), KIND["accept"]),
                        target_type=asked.target_type[keep][order], target=asked.target[keep][order],
                        created=created[keep][order])


def _choose(world: World, channel: Channel, rng: np.random.Generator, users: np.ndarray, actor: np.ndarray,
            candidates: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each event picks one candidate (the best, or in a dismiss event the worst) and a kind for it.

    ``users`` are the actors' user indices, ``actor`` their indices within their role, ``candidates`` (E, C).
    Returns the columns of ``Interactions`` for these events.
    """
    match = channel.match(world, actor, candidates)
    dismiss = rng.random(size=len(actor)) < channel.dismiss_rate
    sign = np.where(dismiss, -1.0, 1.0)[:, None]
    pick = np.argmax(sign * TASTE_STRENGTH * match + rng.gumbel(size=match.shape), axis=1)
    rows = np.arange(len(actor))
    chosen, chosen_match = candidates[rows, pick], match[rows, pick]
    kind = np.full(len(actor), KIND["view"])
    draw, threshold = rng.random(size=len(actor)), np.zeros(len(actor))
    for name, base, slope in channel.engaged:
        upper = threshold + base + slope * chosen_match
        kind[(draw >= threshold) & (draw < upper)] = KIND[name]
        threshold = upper
    kind[dismiss] = KIND["dismiss"]
    lo = np.maximum.reduce([world.people.joined[users], _targets_created(world, channel.target_type)[chosen],
                            np.full(len(actor), world.end - INTERACTION_WINDOW_DAYS * DAY)])
    created = lo + (rng.random(size=len(actor)) * (world.end - lo)).astype(np.int64)
    return users, kind, np.full(len(actor), channel.target_type), chosen, created
