"""A row of impairment fields (latency, jitter, loss, bandwidth) and an Apply button.

Values are typed as on the command line (``200ms``, ``5%``, ``1mbit``); empty
fields are left out. Apply (or Enter in a field) posts
:class:`ImpairmentForm.Submitted` with the settings, and with the user for a
per-client form: checking the values is the simulator's job
(:func:`simulator.spec.apply_settings`), not the form's. The form only keeps
the number fields to the shape of one (:data:`VALUE_SHAPE`: a number, then a
unit), so a key pressed for another purpose (``1`` for the dashboard after
``200ms``) is refused rather than turning the value into ``200ms1``.
Placeholders are examples (``e.g. 50ms``), dimmed, never a setting in force.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, Label

__all__ = ["FIELDS", "VALUE_SHAPE", "ImpairmentForm"]

FIELDS = ("latency", "jitter", "loss", "bandwidth")
_EXAMPLES = {"latency": "50ms", "jitter": "10ms", "loss": "5%", "bandwidth": "1mbit",
             "user": "bob"}
# What a number field may hold while it is typed: empty, or a number and then a unit
# (rtctl.units' grammar); letters never come first and digits never follow the unit.
VALUE_SHAPE = r"(?:(?:\d+\.?\d*|\.\d*)\s?[a-zA-Zµ%/]*)?"


class ImpairmentForm(Horizontal):
    """Fields for one set of settings; ``per_user`` adds the user they apply to."""

    class Submitted(Message):
        """Apply ``settings`` (flag names to typed values), to ``user`` only if given."""

        def __init__(self, settings: dict[str, str], user: str | None) -> None:
            super().__init__()
            self.settings = settings
            self.user = user

    def __init__(self, *, per_user: bool = False, id: str | None = None) -> None:
        super().__init__(id=id, classes="impairment-form")
        self.per_user = per_user

    def compose(self) -> ComposeResult:
        for name in (("user", *FIELDS) if self.per_user else FIELDS):
            with Vertical(classes="field"):
                yield Label(name)
                yield Input(placeholder=f"e.g. {_EXAMPLES[name]}", name=name, classes=name,
                            compact=True, restrict=None if name == "user" else VALUE_SHAPE)
        yield Button("Apply", compact=True, classes="apply")

    def values(self) -> dict[str, str]:
        """The non-empty fields, by name."""
        return {field.name: field.value.strip() for field in self.query(Input)
                if field.name and field.value.strip()}

    @on(Button.Pressed, ".apply")
    @on(Input.Submitted)
    def _apply(self, event: Message) -> None:
        event.stop()
        settings = self.values()
        user = settings.pop("user", None)
        self.post_message(self.Submitted(settings, user))
