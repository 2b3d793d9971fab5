"""The capture list's filters as query parameters, shared by GET /api/v1/captures and /captures."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from .. import listing

DATE = "a date (2026-12-02, the whole day) or an ISO 8601 time (UTC unless it says)"


class Filters(BaseModel):
    q: str | None = Field(default=None, max_length=listing.MAX_TEXT, description="text in the capture's name")
    label: str | None = Field(default=None, max_length=listing.MAX_TEXT,
                              description="a label's value (any kind), or KIND:VALUE (family:Emotet)")
    status: Literal["queued", "running", "indexing", "done", "failed"] | None = None
    has_alerts: bool | None = Field(default=None, description="threat alerts in its last analysis, or none")
    submitted_from: str | None = Field(default=None, max_length=40, description=f"submitted at or after: {DATE}")
    submitted_to: str | None = Field(default=None, max_length=40, description=f"submitted before the end of: {DATE}")
    analysed_from: str | None = Field(default=None, max_length=40, description=f"analysed at or after: {DATE}")
    analysed_to: str | None = Field(default=None, max_length=40, description=f"analysed before the end of: {DATE}")

    @field_validator("*", mode="before")
    @classmethod
    def blank_is_none(cls, value: object) -> object:
        """A form's empty field is no filter."""
        return None if isinstance(value, str) and not value.strip() else value

    def make(self) -> listing.CaptureFilter:
        """Raises QueryError (400) for a date that is not one."""
        return listing.make(self.q, self.label, self.status, self.has_alerts, self.submitted_from,
                            self.submitted_to, self.analysed_from, self.analysed_to)
