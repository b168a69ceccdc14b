"""A training run's progress, as it trains and afterwards (``TrainingRun.progress``).

A run goes through named phases in order (PHASES). In each, every algorithm it fits has its own entry that
only moves forward: the share of its work in that phase that is done (``fraction``), counted in the unit its
fit reports (the Two-Tower's epochs, ALS's iterations, the other models' steps) and, in a phase that compares
settings, which setting of how many it is fitting. The Two-Tower's entries keep its train and validation loss,
learning rate and best epoch per epoch. Nothing is shared between phases: the Two-Tower fitted again in a later
phase starts an entry of its own at epoch 0, where one field for every fit went back from epoch 10 to 1.

``progress`` is JSON:

    {"phase": the phase in progress (or the last one), "phase_label": how people read it,
     "planned": [[part, phase name]] the run goes through, in order, as far as its current part knows,
     "phases": [{"name", "label", "part", "started_at", "seconds" (null while it runs),
                 "algorithms": {algorithm: entry}}],
     # the latest epoch-by-epoch fit (the Two-Tower's, in the phase named), as the API always answered it:
     "algorithm", "epoch", "epochs", "train_loss", "val_loss", "lr", "best_epoch"}

    entry: {"unit", "done", "total" (of the fit in progress), "setting", "settings" (tuning only),
            "fraction" (0-1, never lower than before), "finished", "failed", "seconds",
            "train_loss", "val_loss", "lr", "best_epoch" (epoch fits), "peak_memory_mb" (the final fit)}

Runs recorded before phases were (``{"algorithm", "epoch", "epochs", "train_loss", "val_loss"}`` only) are
read as one fit of an unnamed phase.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.utils import timezone

from .models import algorithm_label

# name -> how the console, the staff pages and admin call it
PHASES = {
    "reading": "Reading the platform's data",
    "validation": "Choosing settings on validation",
    "final_fit": "Final fit on all the data",
    "holdout_fit": "Fitting the held-out measurement's models",
    "measuring": "Measuring the set as served",
}
# What each phase does, for whoever reads the console or hovers over a row.
PHASE_NOTES = {
    "reading": "interactions, profiles and the catalog, as the models see them",
    "validation": "each setting fitted on the events before the held-out ones, without each user's latest 20% "
                  "of those, and scored on that 20%; then the blend's weights",
    "final_fit": "the chosen settings fitted on all the data: the new versions",
    "holdout_fit": "the chosen settings fitted on the events before the held-out ones",
    "measuring": "the set ranked as the API serves it, on each user's latest 20% of events",
}
UNITS = {"epoch": ("epoch", "epochs"), "iteration": ("iteration", "iterations"), "step": ("step", "steps")}
# A fit's steps and iterations can come hundreds a second: the run is written at most this often for them
# (phases, settings, epochs and finished fits are written at once).
WRITE_EVERY_SECONDS = 0.5
_EVERY_TIME = {"epoch", "setting", "component"}


def _empty() -> dict:
    return {"phase": None, "phase_label": None, "planned": [], "phases": []}


def phases_of(progress: dict | None) -> list[dict]:
    return list((progress or {}).get("phases") or [])


class RunProgress:
    """The engine's progress callback for one part of a run: ``begin(phase)`` as the part enters each phase,
    then ``(event, info)`` for each engine event, ``fitted(...)`` as each final fit ends and ``end()``.

    Writes the run's progress through ``save(progress)`` and tells ``echo(algorithm, event, info)`` every event,
    its own included: "phase" (name, label, note, number, of) as a phase begins, "phase_done" (name, label,
    seconds) as it ends.
    """

    def __init__(self, progress: dict | None, save: Callable[[dict], None],
                 echo: Callable[[str, str, dict], None] | None = None, clock: Callable[[], float] = time.monotonic):
        # A run's later part (the Two-Tower on another queue, maybe another machine) carries on its progress.
        known = progress or {}
        self.progress: dict = known if known.get("phases") is not None else {**known, **_empty()}
        self.save, self.echo, self.clock = save, echo, clock
        self.part = 1 + max((phase.get("part", 1) for phase in self.progress["phases"]), default=0)
        self._phase_started: float | None = None
        self._entry_started: dict[str, float] = {}
        self._last_write = -float("inf")

    # ------------------------------------------------------------ phases

    def plan(self, names: Sequence[str], later: Sequence[str] = ()) -> None:
        """The phases this part goes through, and ``later`` those of the run's next part (its own queue)."""
        self.progress["planned"] = [*([self.part, name] for name in names), *([self.part + 1, name] for name in later)]

    def begin(self, name: str, algorithms: Sequence[str] = ()) -> None:
        """Phase ``name`` begins; ``algorithms`` are those it will fit, shown waiting until they begin."""
        self._close_phase()
        planned = [n for part, n in self.progress["planned"] if part == self.part]
        phase = {"name": name, "label": PHASES[name], "part": self.part,
                 "started_at": timezone.now().isoformat(), "seconds": None,
                 "algorithms": {algorithm: _new_entry() for algorithm in algorithms}}
        self.progress["phases"].append(phase)
        self.progress.update(phase=name, phase_label=PHASES[name])
        self._phase_started, self._entry_started = self.clock(), {}
        self._tell("", "phase", {"name": name, "label": PHASES[name], "note": PHASE_NOTES[name],
                                 "number": planned.index(name) + 1 if name in planned else None,
                                 "of": len(planned) or None})
        self._write()

    def end(self) -> None:
        """The part is over: its last phase ends (a failed part's stays open, where it stopped)."""
        self._close_phase()
        self._write()

    def _close_phase(self) -> None:
        phase = self._phase()
        if phase is None or phase["seconds"] is not None or self._phase_started is None:
            return
        for algorithm, entry in phase["algorithms"].items():
            if entry["started"]:
                self._finish(algorithm)
            else:  # it had nothing to do here (a model fitted earlier on the same data was taken as it was)
                entry.update(finished=True, fraction=1.0, skipped=True)
        phase["seconds"] = round(self.clock() - self._phase_started, 2)
        self._tell("", "phase_done", {"name": phase["name"], "label": phase["label"], "seconds": phase["seconds"]})

    def _phase(self) -> dict | None:
        phases = self.progress["phases"]
        return phases[-1] if phases and phases[-1].get("part") == self.part else None

    # ------------------------------------------------------------ the engine's events

    def __call__(self, event: str, info: dict) -> None:
        algorithm = info.get("algorithm") or ("two_tower" if event == "epoch" else "")
        self._tell(algorithm, event, info)
        phase = self._phase()
        if phase is None or not algorithm or algorithm == "hybrid" or phase["seconds"] is not None:
            return
        entry = self._entry(phase, algorithm)
        if event == "fitting":  # tuning starts a setting: its fit's own progress counts inside it
            entry.update(setting=info["setting"], settings=info["settings"], done=0, total=None)
        elif event == "fit":
            entry.update(unit=info.get("unit"), done=0, total=info.get("total"))
            if entry.get("unit") == "epoch":
                entry.update(train_loss=[], val_loss=[], lr=[], best_epoch=None)
        elif event in ("epoch", "iteration", "step"):
            count, total = UNITS[event][0], UNITS[event][1]
            done = int(info.get(count) or 0)
            if event == "epoch":
                self._epoch(entry, algorithm, info, done)
            entry.update(unit=event, done=done, total=info.get(total) or entry.get("total"))
        elif event == "setting":
            entry.update(setting=info.get("setting"), settings=info.get("settings"))
            entry["done"] = entry.get("total") or entry.get("done")
            entry["fraction"] = max(entry["fraction"], (info.get("setting") or 0) / (info.get("settings") or 1))
        elif event == "component":
            self._finish(algorithm, seconds=info.get("seconds"), failed=not info.get("ok", True))
        self._advance(entry)
        if event in _EVERY_TIME or self.clock() - self._last_write >= WRITE_EVERY_SECONDS:
            self._write()

    def fitted(self, algorithm: str, *, seconds: float, peak_memory_mb: float | None, device: str = "") -> None:
        """A version's final fit ended: its time and the process's peak memory meanwhile (ml.training)."""
        phase = self._phase()
        if phase is not None:
            self._entry(phase, algorithm)["peak_memory_mb"] = peak_memory_mb
            self._finish(algorithm, seconds=seconds)
        self._tell(algorithm, "fitted", {"algorithm": algorithm, "seconds": seconds,
                                         "peak_memory_mb": peak_memory_mb, "device": device})
        self._write()

    def _entry(self, phase: dict, algorithm: str) -> dict:
        entries = phase["algorithms"]
        entry = entries.setdefault(algorithm, _new_entry())
        if not entry["started"]:
            # The algorithms of a phase fit one after the other: one that begins ends the one before.
            for other, before in entries.items():
                if before["started"]:
                    self._finish(other)
            entry["started"] = True
            self._entry_started[algorithm] = self.clock()
        return entry

    def _epoch(self, entry: dict, algorithm: str, info: dict, epoch: int) -> None:
        if "train_loss" not in entry or epoch <= len(entry["train_loss"]):  # a fit that did not say it began
            entry.update(train_loss=[], val_loss=[], lr=[], best_epoch=None)
        entry["train_loss"].append(_finite(info.get("train_loss")))
        entry["val_loss"].append(_finite(info.get("val_loss")))
        entry["lr"].append(info.get("lr"))
        entry["best_epoch"] = info.get("best_epoch")
        phase = self._phase()
        self.progress.update(algorithm=algorithm, epoch=epoch, epochs=info.get("epochs"),
                             train_loss=list(entry["train_loss"]), val_loss=list(entry["val_loss"]),
                             lr=list(entry["lr"]), best_epoch=entry["best_epoch"],
                             loss_phase=phase["name"] if phase else None)

    @staticmethod
    def _advance(entry: dict) -> None:
        if entry["finished"]:
            return
        inner = (entry["done"] or 0) / entry["total"] if entry.get("total") else 0.0
        settings = entry.get("settings")
        share = ((entry["setting"] or 1) - 1 + min(inner, 1.0)) / settings if settings else min(inner, 1.0)
        entry["fraction"] = round(max(entry["fraction"], share), 4)  # never back

    def _finish(self, algorithm: str, seconds: float | None = None, failed: bool = False) -> None:
        phase = self._phase()
        entry = phase and phase["algorithms"].get(algorithm)
        if not entry or (entry["finished"] and seconds is None):
            return
        started = self._entry_started.get(algorithm)
        if seconds is None and started is not None:
            seconds = round(self.clock() - started, 2)
        entry.update(finished=True, failed=failed or entry["failed"], fraction=1.0,
                     seconds=entry["seconds"] if seconds is None else seconds)

    # ------------------------------------------------------------ out

    def _tell(self, algorithm: str, event: str, info: dict) -> None:
        if self.echo is not None:
            self.echo(algorithm, event, info)

    def _write(self) -> None:
        self._last_write = self.clock()
        self.save(self.progress)


def _new_entry() -> dict:
    return {"unit": None, "done": 0, "total": None, "setting": None, "settings": None, "fraction": 0.0,
            "started": False, "finished": False, "failed": False, "seconds": None}


def _finite(value):
    return value if isinstance(value, int | float) and value == value and abs(value) != float("inf") else None


# ---------------------------------------------------------------- reading it back


def loss_fits(progress: dict | None) -> list[tuple[str, dict]]:
    """(title, {"train_loss", "val_loss", "lr", "best_epoch"}) of every epoch-by-epoch fit the run recorded,
    in the order they ran: what the loss plots draw."""
    progress = progress or {}
    fits, titles = [], set()
    for phase in phases_of(progress):
        for algorithm, entry in phase["algorithms"].items():
            if entry.get("train_loss"):
                title = f"{algorithm_label(algorithm)}: {phase['label'].lower()}"
                while title in titles:  # a part tried again fits its phases again
                    title += " (again)"
                titles.add(title)
                fits.append((title, entry))
    if not fits and progress.get("train_loss") and not phases_of(progress):  # recorded before phases were
        fits.append((algorithm_label(progress.get("algorithm") or "model"), progress))
    return fits


def final_fit_losses(progress: dict | None, algorithm: str) -> dict | None:
    """The losses of ``algorithm``'s final fit (its version's), or None."""
    for phase in reversed(phases_of(progress)):
        entry = phase["algorithms"].get(algorithm)
        if phase["name"] == "final_fit" and entry and entry.get("train_loss"):
            return entry
    return None


@dataclass
class Cell:
    text: str
    percent: int
    state: str  # "done", "running", "failed", "stopped" (its run ended before it did)
    title: str = ""


@dataclass
class PhaseRow:
    label: str
    note: str
    state: str  # "done", "running", "pending", "stopped"
    seconds: float | None
    cells: list[Cell | None] = field(default_factory=list)


@dataclass
class ProgressTable:
    columns: list[tuple[str, str]]  # (algorithm, label)
    rows: list[PhaseRow]
    phase_label: str | None
    percent: int  # of the phases planned, done (a running phase counts its share)


def progress_table(progress: dict | None, *, running: bool) -> ProgressTable:
    """A run's phases as rows, its algorithms as columns, each cell a progress bar with what it counts:
    for the staff training-runs page (live, polled) and admin. Phases planned but not begun are pending
    rows while the run is ``running``; a phase still open when the run is not is where it stopped."""
    phases = phases_of(progress)
    order = {name: n for n, name in enumerate(["content_based", "collaborative", "two_tower", "ease", "rp3beta",
                                               "popularity"])}
    names = sorted({a for phase in phases for a in phase["algorithms"]}, key=lambda a: (order.get(a, 99), a))
    rows = []
    for phase in phases:
        open_ = phase["seconds"] is None
        state = ("running" if running else "stopped") if open_ else "done"
        cells = [_cell(phase["algorithms"][a], phase["name"], running and open_) if a in phase["algorithms"]
                 else None for a in names]
        rows.append(PhaseRow(phase["label"], PHASE_NOTES.get(phase["name"], ""), state, phase["seconds"], cells))
    begun = {(phase.get("part", 1), phase["name"]) for phase in phases}
    planned = [tuple(pair) for pair in (progress or {}).get("planned") or [] if isinstance(pair, list | tuple)]
    pending = [name for part, name in planned if (part, name) not in begun] if running else []
    rows += [PhaseRow(PHASES[name], PHASE_NOTES[name], "pending", None, [None] * len(names)) for name in pending]
    done = sum(1 for row in rows if row.state == "done")
    running_share = 0.0
    for phase, row in zip(phases, rows, strict=False):
        if row.state == "running":  # its algorithms' shares; every one it will fit is in it from the start
            shares = [entry.get("fraction") or 0.0 for entry in phase["algorithms"].values()]
            running_share = sum(shares) / len(shares) if shares else 0.0
    percent = int(100 * (done + running_share) / len(rows)) if rows else 0
    return ProgressTable([(a, algorithm_label(a)) for a in names], rows, (progress or {}).get("phase_label"),
                         percent)


def _cell(entry: dict, phase: str, running: bool) -> Cell:
    percent = int(round(100 * (entry.get("fraction") or 0)))
    seconds = entry.get("seconds")
    if entry.get("skipped"):
        return Cell("fitted earlier on the same data", 100, "done")
    if not entry.get("started", True):
        return Cell("waiting" if running else "not begun", 0, "pending")
    took = "" if seconds is None else f"{_seconds(seconds)}"
    if entry.get("failed"):
        return Cell(f"failed{' · ' + took if took else ''}", 100, "failed")
    unit = UNITS.get(entry.get("unit") or "", ("step", "steps"))
    done, total = entry.get("done") or 0, entry.get("total")
    best = entry.get("best_epoch")
    if not entry.get("finished"):
        parts = []
        if entry.get("settings"):
            parts.append(f"setting {entry['setting']} of {entry['settings']}")
        if total:
            parts.append(f"{unit[0]} {done} of {total}")
        if best:
            parts.append(f"best {best}")
        return Cell(" · ".join(parts) or "starting", percent, "running" if running else "stopped")
    parts = []
    if entry.get("settings"):
        parts.append(f"{entry['settings']} settings")
    elif entry.get("unit") == "epoch" and done:
        parts.append(f"{done} of {total} epochs" if total and done < total else f"{done} epochs")
        if best:
            parts.append(f"best {best}")
    if took:
        parts.append(took)
    if entry.get("peak_memory_mb") is not None:
        parts.append(f"{entry['peak_memory_mb']:.0f} MB")
    title = "peak resident memory of the training process while it fitted" if phase == "final_fit" else ""
    return Cell(" · ".join(parts) or "done", 100, "done", title)


def _seconds(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s" if seconds < 100 else f"{seconds:.0f} s"
