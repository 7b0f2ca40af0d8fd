"""Admin forms: a key is created through the service; a credential's secret is write-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.widgets import FilteredSelectMultiple

from accounts.models import UpstreamCredential, User
from accounts.services import AccountsError, clean_api_key
from catalog.models import Model


class ClientKeyCreateForm(forms.Form):
    user = forms.ModelChoiceField(queryset=User.objects.order_by("username"))
    name = forms.CharField(max_length=100, initial="default")
    expires_at = forms.DateTimeField(
        required=False, help_text="Optional, e.g. 2027-01-31 18:00 (UTC). Empty: never expires."
    )


class UpstreamCredentialForm(forms.ModelForm):
    api_key = forms.CharField(
        label="Command Code API key",
        required=False,
        strip=True,
        # Write-only: the stored secret is never rendered back into the page.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Write-only. Leave empty to keep the current key.",
    )

    allowed_models = forms.MultipleChoiceField(
        required=False,
        widget=FilteredSelectMultiple("models", is_stacked=False),
        help_text="Upstream model ids this key may serve; none selected = all.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A picker over the catalog; ids stored before (even if gone from it) stay choosable.
        ids = list(Model.objects.order_by("upstream_id").values_list("upstream_id", flat=True))
        stored = [model_id for model_id in (self.instance.allowed_models or []) if model_id not in ids]
        self.fields["allowed_models"].choices = [(model_id, model_id) for model_id in ids + stored]

    class Meta:
        model = UpstreamCredential
        fields = [
            "label",
            "api_key",
            "enabled",
            "weight",
            "allowed_models",
            "max_concurrent",
        ]

    def clean_api_key(self) -> str:
        api_key: str = self.cleaned_data.get("api_key", "")
        if not api_key:
            if self.instance.pk is None:
                raise forms.ValidationError("A new credential needs its API key.")
            return ""
        try:
            return clean_api_key(api_key)
        except AccountsError as exc:
            raise forms.ValidationError(str(exc)) from None
