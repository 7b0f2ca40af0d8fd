"""Admin forms: a key is created through the service; a credential's secret is write-only."""

from __future__ import annotations

from django import forms

from accounts.models import UpstreamCredential, User
from accounts.services import AccountsError, clean_api_key


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

    class Meta:
        model = UpstreamCredential
        fields = [
            "label",
            "api_key",
            "enabled",
            "weight",
            "allowed_models",
            "max_concurrent",
            "cooldown_until",
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
