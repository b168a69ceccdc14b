"""Who and what: people (one role each), the startup catalog, and every interaction.

Constraints live in the database so that bad rows cannot be stored whichever code path
writes them: unique vocabularies, non-negative money, ordered ranges, and an interaction
that points at exactly one target.
"""
from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Role(models.TextChoices):
    DEVELOPER = "developer", "Developer"
    FOUNDER = "founder", "Founder"
    INVESTOR = "investor", "Investor"


def a_or_an(noun: str) -> str:
    """'a developer', 'an investor': a role or item type as error messages name it."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


class Stage(models.TextChoices):
    IDEA = "idea", "Idea"
    PRE_SEED = "pre_seed", "Pre-seed"
    SEED = "seed", "Seed"
    SERIES_A = "series_a", "Series A"
    SERIES_B = "series_b", "Series B"
    SERIES_C_PLUS = "series_c_plus", "Series C+"


class RemotePreference(models.TextChoices):
    REMOTE = "remote", "Remote only"
    HYBRID = "hybrid", "Hybrid"
    ONSITE = "onsite", "On-site"
    ANY = "any", "No preference"


class Industry(models.Model):
    name = models.CharField(max_length=80, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "industries"

    def __str__(self) -> str:
        return self.name


class Skill(models.Model):
    """A skill, stored lower-case so that "Python" and "python" are one skill."""

    name = models.CharField(max_length=80, unique=True)
    industry = models.ForeignKey(
        Industry, null=True, blank=True, on_delete=models.SET_NULL, related_name="skills",
        help_text="The industry this skill is most associated with, if any.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="skill_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name


class Developer(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE,
                                related_name="developer")
    headline = models.CharField(max_length=200, blank=True)
    skills = models.ManyToManyField(Skill, blank=True, related_name="developers")
    years_experience = models.PositiveSmallIntegerField(default=0)
    preferred_industries = models.ManyToManyField(Industry, blank=True, related_name="interested_developers")
    remote_preference = models.CharField(max_length=10, choices=RemotePreference.choices, default=RemotePreference.ANY)
    desired_salary = models.PositiveIntegerField(null=True, blank=True, help_text="Yearly, in USD.")
    location = models.CharField(max_length=120, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(years_experience__lte=70), name="developer_years_experience_range"),
            models.CheckConstraint(condition=Q(remote_preference__in=RemotePreference.values),
                                   name="developer_remote_preference_valid"),
        ]

    def __str__(self) -> str:
        return f"developer {self.user.get_username()}"


class Founder(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE,
                                related_name="founder")
    skills = models.ManyToManyField(Skill, blank=True, related_name="founders")
    years_experience = models.PositiveSmallIntegerField(default=0)
    location = models.CharField(max_length=120, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(years_experience__lte=70), name="founder_years_experience_range"),
        ]

    def __str__(self) -> str:
        return f"founder {self.user.get_username()}"


class Investor(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE,
                                related_name="investor")
    firm = models.CharField(max_length=200, blank=True)
    preferred_industries = models.ManyToManyField(Industry, blank=True, related_name="interested_investors")
    # A list of Stage values; validated by the services that write it (a JSON list keeps SQLite and
    # PostgreSQL on one schema).
    preferred_stages = models.JSONField(default=list, blank=True)
    check_size_min = models.PositiveBigIntegerField(default=0, help_text="USD.")
    check_size_max = models.PositiveBigIntegerField(default=0, help_text="USD.")
    location = models.CharField(max_length=120, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(check_size_min__lte=F("check_size_max")),
                                   name="investor_check_size_ordered"),
        ]

    def __str__(self) -> str:
        return f"investor {self.user.get_username()}"


class Startup(models.Model):
    name = models.CharField(max_length=200)
    founders = models.ManyToManyField(Founder, blank=True, related_name="startups")
    industry = models.ForeignKey(Industry, on_delete=models.PROTECT, related_name="startups")
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.IDEA)
    team_size = models.PositiveIntegerField(default=1)
    funding_raised = models.PositiveBigIntegerField(default=0, help_text="USD.")
    required_skills = models.ManyToManyField(Skill, blank=True, related_name="startups")
    location = models.CharField(max_length=120, blank=True)
    remote_friendly = models.BooleanField(default=False)
    description = models.TextField(blank=True)
    # Fundraising: investors are recommended only startups that raise a round their checks fit
    # (ml.serving_set.market_candidates). A new startup declares it; rows that existed before the field were shown
    # to investors, so the migration kept them raising.
    raising = models.BooleanField(default=False, help_text="Whether the startup is raising a round now.")
    round_size = models.PositiveBigIntegerField(null=True, blank=True,
                                                help_text="USD: the round being raised (null: not said).")
    round_closes_at = models.DateTimeField(null=True, blank=True, help_text="When the round closes, if known.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(stage__in=Stage.values), name="startup_stage_valid"),
            models.CheckConstraint(condition=Q(team_size__gte=1), name="startup_team_size_positive"),
            models.CheckConstraint(condition=~Q(name=""), name="startup_name_not_empty"),
        ]
        # updated_at's: every registry check reads the latest edit from its end (ml.platform_data.catalog_version)
        indexes = [models.Index(fields=["stage"]), models.Index(fields=["industry", "stage"]),
                   models.Index(fields=["updated_at"])]

    def __str__(self) -> str:
        return self.name


class Position(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        INTERVIEWING = "interviewing", "Interviewing"
        FILLED = "filled", "Filled"
        CLOSED = "closed", "Closed"

    startup = models.ForeignKey(Startup, on_delete=models.CASCADE, related_name="positions")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    required_skills = models.ManyToManyField(Skill, blank=True, related_name="positions")
    salary_min = models.PositiveIntegerField(null=True, blank=True, help_text="Yearly, in USD.")
    salary_max = models.PositiveIntegerField(null=True, blank=True, help_text="Yearly, in USD.")
    remote = models.BooleanField(default=False)
    years_experience_required = models.PositiveSmallIntegerField(default=0)
    location = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    openings = models.PositiveSmallIntegerField(default=1, help_text="How many people the position hires.")
    # The distinct users who applied: a counter kept by profiles.services (position_applicants_refresh) where
    # applications are recorded, so that lists and serving read a column instead of counting events.
    applicants = models.PositiveIntegerField(default=0, editable=False,
                                             help_text="How many different users applied (read-only).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(salary_min__isnull=True) | Q(salary_max__isnull=True) | Q(salary_min__lte=F("salary_max")),
                name="position_salary_range_ordered",
            ),
            models.CheckConstraint(condition=Q(status__in=["open", "interviewing", "filled", "closed"]),
                                   name="position_status_valid"),
            models.CheckConstraint(condition=Q(years_experience_required__lte=70),
                                   name="position_years_experience_range"),
            models.CheckConstraint(condition=~Q(title=""), name="position_title_not_empty"),
            models.CheckConstraint(condition=Q(openings__gte=1), name="position_openings_positive"),
        ]
        indexes = [models.Index(fields=["status"]), models.Index(fields=["startup", "status"]),
                   models.Index(fields=["updated_at"])]  # as the startups': the latest edit, read from its end

    def __str__(self) -> str:
        return f"{self.title} at {self.startup.name}"


class InteractionKind(models.TextChoices):
    VIEW = "view", "View"
    LIKE = "like", "Like"
    SAVE = "save", "Save"
    APPLY = "apply", "Apply"
    FOLLOW = "follow", "Follow"
    INVEST_INTEREST = "invest_interest", "Investment interest"
    CONTACT = "contact", "Contact"
    DISMISS = "dismiss", "Dismiss"
    # The target of a contact or application accepting it (profiles.services.interaction_record checks that it
    # answers one): a founder accepts an applicant or an investor, a developer or investor a founder's startup.
    ACCEPT = "accept", "Accept"


class Outcome(models.TextChoices):
    """What an event says about the recommendation it answers (docs/api.md, "The online loop")."""

    CLICK = "click", "Click"
    POSITIVE = "positive", "Positive"
    CONVERSION = "conversion", "Conversion"
    DISMISSAL = "dismissal", "Dismissal"


# What each kind says about a recommendation shown to its user; ``accept`` has none: it answers someone else's
# contact or application, not a recommendation the accepter was shown, so it is never attributed.
OUTCOME_OF_KIND: dict[str, Outcome] = {
    InteractionKind.VIEW: Outcome.CLICK,
    InteractionKind.LIKE: Outcome.POSITIVE,
    InteractionKind.SAVE: Outcome.POSITIVE,
    InteractionKind.FOLLOW: Outcome.POSITIVE,
    InteractionKind.APPLY: Outcome.CONVERSION,
    InteractionKind.INVEST_INTEREST: Outcome.CONVERSION,
    InteractionKind.CONTACT: Outcome.CONVERSION,
    InteractionKind.DISMISS: Outcome.DISMISSAL,
}


class ItemType(models.TextChoices):
    POSITION = "position", "Position"
    STARTUP = "startup", "Startup"
    DEVELOPER = "developer", "Developer"
    INVESTOR = "investor", "Investor"


# The target column of each item type; exactly one of them is set on every interaction.
TARGET_FIELDS: dict[str, str] = {
    ItemType.POSITION: "position",
    ItemType.STARTUP: "startup",
    ItemType.DEVELOPER: "developer",
    ItemType.INVESTOR: "investor",
}


def _exactly_one_target() -> Q:
    fields = list(TARGET_FIELDS.values())
    alternatives = Q()
    for chosen in fields:
        alternatives |= Q(**{f"{chosen}__isnull": False}, **{f"{other}__isnull": True for other in fields
                                                               if other != chosen})
    return alternatives


class Interaction(models.Model):
    """One event: who did what to exactly one target, when."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="interactions")
    kind = models.CharField(max_length=20, choices=InteractionKind.choices)
    position = models.ForeignKey(Position, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="interactions")
    startup = models.ForeignKey(Startup, null=True, blank=True, on_delete=models.CASCADE, related_name="interactions")
    developer = models.ForeignKey(Developer, null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="interactions_received")
    investor = models.ForeignKey(Investor, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="interactions_received")
    created_at = models.DateTimeField(db_index=True)
    # The recommendation this event answers (sent, or the latest one that showed the item within
    # ATTRIBUTION_WINDOW_HOURS), and what the event means for it; null and "" for an unattributed event.
    impression = models.ForeignKey("recommendations.Impression", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="interactions")
    outcome = models.CharField(max_length=20, blank=True, db_default="", choices=Outcome.choices)
    # The item's 1-based position in that impression, stored at attribution so that the online metrics
    # group by rank with a GROUP BY instead of searching each impression's items; null when unattributed.
    rank = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=_exactly_one_target(), name="interaction_exactly_one_target"),
            models.CheckConstraint(condition=Q(kind__in=InteractionKind.values), name="interaction_kind_valid"),
        ]
        indexes = [
            # The engine reads a user's history, newest first, and the whole table in id order.
            models.Index(fields=["user", "-created_at"], name="interaction_user_recent"),
            models.Index(fields=["kind"], name="interaction_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind} {self.item_type} {self.item_id}"

    @property
    def item_type(self) -> str:
        return next(item_type for item_type, field in TARGET_FIELDS.items() if getattr(self, f"{field}_id"))

    @property
    def item_id(self) -> int:
        return getattr(self, f"{TARGET_FIELDS[self.item_type]}_id")
