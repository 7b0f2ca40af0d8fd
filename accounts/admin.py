"""Admin for users, client keys and upstream credentials. Secrets are never displayed."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path

from accounts import services
from accounts.budget_prices import unpriced_budget_warning
from accounts.forms import ClientKeyCreateForm, UpstreamCredentialForm
from accounts.models import ClientKey, UpstreamCredential, User
from accounts.secret_once import pop_secret, stash_secret

admin.site.site_header = "ccsite administration"
admin.site.site_title = "ccsite"

LIMIT_FIELDSET = (
    "Limits",
    {
        "fields": [
            "allowed_models",
            ("rpm_limit", "tpm_limit", "concurrent_limit"),
            ("budget_tokens", "budget_cost", "budget_period"),
        ],
        "description": "Empty fields set no limit. Budgets are in tokens or in estimated cost, "
        "per calendar period (UTC).",
    },
)


def _warn_unpriced(model_admin: admin.ModelAdmin, request: HttpRequest, obj: User | ClientKey) -> None:
    """Saved anyway: a cost budget over unpriced models is allowed, but counts nothing for them."""
    warning = unpriced_budget_warning(obj)
    if warning:
        model_admin.message_user(request, warning[0].upper() + warning[1:], messages.WARNING)


@admin.register(User)
class TeamUserAdmin(UserAdmin):
    """Django's user admin plus the user's limits (they bound all the user's keys together)."""

    fieldsets = (*UserAdmin.fieldsets, LIMIT_FIELDSET)  # type: ignore[misc]
    list_display = [*UserAdmin.list_display, "rpm_limit", "concurrent_limit", "budget_tokens", "budget_cost"]

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        services.limits_changed()
        _warn_unpriced(self, request, obj)


@admin.register(ClientKey)
class ClientKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "expires_at", "revoked"]
    list_filter = ["revoked"]
    search_fields = ["name", "prefix", "user__username"]
    raw_id_fields = ["user"]
    readonly_fields = ["user", "prefix", "created_at", "last_used_at", "revoked", "revoked_at"]
    fieldsets = (
        (
            None,
            {
                "fields": [
                    "user",
                    "name",
                    "prefix",
                    "expires_at",
                    "created_at",
                    "last_used_at",
                    "revoked",
                    "revoked_at",
                ]
            },
        ),
        (
            "Limits of this key",
            {
                **LIMIT_FIELDSET[1],
                "description": "On top of the user's limits. Allowed models, when set, replace the "
                "user's list. Empty fields set no limit.",
            },
        ),
    )
    actions = ["revoke_keys"]

    def get_urls(self) -> list[Any]:
        created = path(
            "<int:key_id>/created/",
            self.admin_site.admin_view(self.created_view),
            name="accounts_clientkey_created",
        )
        return [created, *super().get_urls()]

    def save_model(self, request: HttpRequest, obj: ClientKey, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        services.limits_changed()
        _warn_unpriced(self, request, obj)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """A custom add page: the service creates the key and the secret is shown once."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ClientKeyCreateForm(request.POST or None)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form}
        if request.method == "POST" and form.is_valid():
            key, secret = services.client_key_create(
                user=form.cleaned_data["user"],
                name=form.cleaned_data["name"],
                expires_at=form.cleaned_data["expires_at"],
            )
            self.log_addition(request, key, [{"added": {}}])
            # POST/redirect/GET: a refresh of the next page creates nothing and shows nothing.
            stash_secret(request, key_id=key.pk, secret=secret)
            return redirect("admin:accounts_clientkey_created", key_id=key.pk)
        context["title"] = "Create a client key"
        return TemplateResponse(request, "admin/accounts/clientkey/add.html", context)

    def created_view(self, request: HttpRequest, key_id: int) -> HttpResponse:
        """The new key's secret, once (from the session); afterwards only its change page."""
        key = get_object_or_404(ClientKey, pk=key_id)
        secret = pop_secret(request, key_id=key.pk)
        if secret is None:
            self.message_user(request, "That key's secret was already shown; it cannot be shown again.")
            return redirect("admin:accounts_clientkey_change", key.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "key": key,
            "secret": secret,
            "title": "Client key created",
        }
        response = TemplateResponse(request, "admin/accounts/clientkey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ClientKey]) -> None:
        revoked = sum(services.client_key_revoke(key=key) for key in queryset)
        already = len(queryset) - revoked
        note = f"; {already} already revoked" if already else ""
        self.message_user(request, f"Revoked {revoked} key(s){note}.", messages.SUCCESS)


@admin.register(UpstreamCredential)
class UpstreamCredentialAdmin(admin.ModelAdmin):
    form = UpstreamCredentialForm
    list_display = [
        "label",
        "masked_secret",
        "enabled",
        "routing_state",
        "cooldown",
        "in_flight",
        "weight",
        "max_concurrent",
        "last_error",
        "last_used_at",
        "billing_summary",
    ]
    list_filter = ["enabled"]
    search_fields = ["label"]
    readonly_fields = [
        "masked_secret",
        "disabled_reason",
        "last_error",
        "last_error_at",
        "last_used_at",
        "created_at",
        "billing_summary",
        "billing_refreshed_at",
        "cooldown_until",
        "cooldown_reason",
    ]
    actions = ["enable_credentials", "disable_credentials", "refresh_billing"]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # Live routing state for every row at once (shared state; this process's in memory).
        from proxy.credential_report import credential_report_sync

        self._live = {entry["id"]: entry for entry in credential_report_sync(in_gateway=True)}
        return super().changelist_view(request, extra_context)

    def _live_of(self, obj: UpstreamCredential) -> dict:
        return getattr(self, "_live", {}).get(obj.pk, {})

    @admin.display(description="state")
    def routing_state(self, obj: UpstreamCredential) -> str:
        state = self._live_of(obj).get("state", "")
        return f"{state}: {obj.disabled_reason}" if state == "disabled" and obj.disabled_reason else state

    @admin.display(description="cooling until")
    def cooldown(self, obj: UpstreamCredential) -> str:
        live = self._live_of(obj)
        if not live.get("cooldown_until"):
            return "-"
        return f"{live['cooldown_until']} ({live.get('cooldown_reason') or 'cooling'})"

    @admin.display(description="in flight")
    def in_flight(self, obj: UpstreamCredential) -> str:
        value = self._live_of(obj).get("in_flight")
        return "-" if value is None else str(value)

    @admin.display(description="billing")
    def billing_summary(self, obj: UpstreamCredential) -> str:
        snap = obj.billing or {}
        if not snap:
            return "-"
        parts = []
        if snap.get("credits_remaining") is not None:
            parts.append(f"${snap['credits_remaining']:g} left")
        if snap.get("plan"):
            parts.append(str(snap["plan"]))
        if snap.get("period_end_iso"):
            parts.append(f"renews {str(snap['period_end_iso'])[:10]}")
        if snap.get("error"):
            parts.append(f"last refresh failed: {snap['error']}")
        return ", ".join(parts) or "-"

    @admin.action(description="Refresh billing of selected credentials")
    def refresh_billing(self, request: HttpRequest, queryset: QuerySet[UpstreamCredential]) -> None:
        from proxy.billing import refresh_billing_sync

        results = refresh_billing_sync([c.pk for c in queryset])
        failed = {label: error for label, error in results.items() if error}
        level = messages.WARNING if failed else messages.SUCCESS
        text = f"Refreshed billing of {len(results) - len(failed)} credential(s)."
        if failed:
            text += " Failed: " + "; ".join(f"{label}: {error}" for label, error in failed.items())
        self.message_user(request, text, level)

    def get_fields(self, request: HttpRequest, obj: UpstreamCredential | None = None) -> list[str]:
        fields = list(UpstreamCredentialForm.Meta.fields)
        if obj is not None:
            fields[1:1] = ["masked_secret"]
            # Written by routing, never by hand: "Enable" clears a cooldown.
            fields += ["cooldown_until", "cooldown_reason"]
            fields += ["disabled_reason", "last_error", "last_error_at", "last_used_at", "created_at"]
            fields += ["billing_summary", "billing_refreshed_at"]
        return fields

    @admin.display(description="API key")
    def masked_secret(self, obj: UpstreamCredential) -> str:
        return obj.masked_secret

    def save_model(
        self, request: HttpRequest, obj: UpstreamCredential, form: UpstreamCredentialForm, change: bool
    ) -> None:
        if form.cleaned_data.get("api_key"):
            services.credential_set_secret(credential=obj, api_key=form.cleaned_data["api_key"])
        obj.save()

    @admin.action(description="Enable selected credentials (and clear their cooldowns)")
    def enable_credentials(self, request: HttpRequest, queryset: QuerySet[UpstreamCredential]) -> None:
        count = services.credential_set_enabled(credentials=list(queryset), enabled=True)
        self.message_user(request, f"Enabled {count} credential(s).", messages.SUCCESS)

    @admin.action(description="Disable selected credentials")
    def disable_credentials(self, request: HttpRequest, queryset: QuerySet[UpstreamCredential]) -> None:
        count = services.credential_set_enabled(credentials=list(queryset), enabled=False)
        self.message_user(request, f"Disabled {count} credential(s).", messages.SUCCESS)
