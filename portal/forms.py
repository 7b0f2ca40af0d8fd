"""The self-service key form: a name and an optional expiry date (end of that day, UTC)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django import forms


class NewKeyForm(forms.Form):
    name = forms.CharField(max_length=100, initial="laptop")
    expires_on = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Optional: the key stops working at the end of this day (UTC).",
    )

    def clean_expires_on(self) -> datetime | None:
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        if day >= date.max:  # its end (the next midnight) is past what a date-time can hold
            raise forms.ValidationError(f"Pick a day before {date.max}.")
        expires_at = datetime.combine(day, time.min, tzinfo=UTC) + timedelta(days=1)
        if expires_at <= datetime.now(UTC):
            raise forms.ValidationError("Pick today or a later day.")
        return expires_at
