"""The report page's filter form: date range, bucket, user, key, model, credential, surface."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django import forms
from django.core.exceptions import ValidationError

from accounts.models import ClientKey, UpstreamCredential, User
from usage.models import Surface
from usage.selectors import ReportFilter, default_range

# The days a report can cover: its hour buckets count from the Unix epoch, and the day after
# ``until`` must still be a date.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9999, 12, 30)
DAY_RANGE_MESSAGE = f"Enter a date from {FIRST_DAY} to {LAST_DAY}."


def check_day(day: date) -> None:
    """Raise ValidationError for a day the report cannot cover."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValidationError(DAY_RANGE_MESSAGE, code="day_range")


class DayField(forms.DateField):
    """A day as YYYY-MM-DD; anything else is an error worded as `manage.py usage` words it."""

    input_formats = ["%Y-%m-%d"]

    def to_python(self, value: object) -> object:
        try:
            return super().to_python(value)
        except forms.ValidationError:
            raise forms.ValidationError(f"not a date (YYYY-MM-DD): {value!r}", code="invalid") from None


class ReportForm(forms.Form):
    since = DayField(required=False, widget=forms.DateInput(attrs={"type": "date"}), validators=[check_day])
    until = DayField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="inclusive",
        validators=[check_day],
    )
    bucket = forms.ChoiceField(choices=[("day", "day"), ("hour", "hour")], required=False)
    user = forms.ModelChoiceField(User.objects.order_by("username"), required=False)
    key = forms.ModelChoiceField(ClientKey.objects.select_related("user").order_by("name"), required=False)
    model = forms.CharField(required=False, max_length=200)
    credential = forms.ModelChoiceField(UpstreamCredential.objects.order_by("label"), required=False)
    surface = forms.ChoiceField(choices=[("", "all"), *Surface.choices], required=False)

    def clean(self) -> dict:
        data = super().clean() or {}
        if data.get("since") and data.get("until") and data["until"] < data["since"]:
            raise forms.ValidationError("until is before since: the range is empty")
        return data

    def report_filter(self) -> tuple[ReportFilter, str]:
        """The filter and bucket; only for a valid (or empty) form: a bad filter is an error to
        show, never silently dropped (the report would be of other requests than asked for)."""
        if self.is_bound and not self.is_valid():
            raise ValueError(f"invalid report filter: {self.errors.as_text()}")
        data = self.cleaned_data if self.is_bound else {}
        since, until = default_range()
        if data.get("since"):
            since = datetime.combine(data["since"], time.min, tzinfo=UTC)
        if data.get("until"):
            until = datetime.combine(data["until"], time.min, tzinfo=UTC) + timedelta(days=1)
        report_filter = ReportFilter(
            since=since,
            until=until,
            user_id=data["user"].pk if data.get("user") else None,
            key_id=data["key"].pk if data.get("key") else None,
            model=data.get("model") or "",
            credential_id=data["credential"].pk if data.get("credential") else None,
            surface=data.get("surface") or "",
        )
        return report_filter, data.get("bucket") or "day"
