"""The self-service pages at /: a landing page, then a team member's own keys, limits, usage
and client set-ups. Every query is scoped to ``request.user``; another user's key is a 404."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.limits import limits_of
from accounts.management.limit_options import limits_json
from accounts.models import ClientKey, User
from accounts.secret_once import pop_secret, stash_secret
from accounts.services import client_key_create, client_key_revoke
from accounts.status import limit_use, period_usage
from portal.charts import daily_bars
from portal.forms import NewKeyForm
from portal.limit_labels import key_limits_text, readable_entry
from portal.setup_snippets import KEY, snippets
from usage.selectors import ReportFilter, usage_over_time


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return render(request, "portal/landing.html")
    return render(request, "portal/dashboard.html", _dashboard(request, request.user, NewKeyForm()))  # type: ignore[arg-type]


def _key_state(key: ClientKey) -> str:
    if key.revoked:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= timezone.now():
        return "expired"
    return "active"


def _limit_use(user: User, limits: Any) -> list[dict[str, Any]]:
    return async_to_sync(limit_use)("user", f"user:{user.pk}", limits) if limits else []


def _dashboard(request: HttpRequest, user: User, form: NewKeyForm) -> dict[str, Any]:
    keys = list(user.client_keys.order_by("-created_at"))
    user_limits = limits_of(user)
    usage = period_usage(user.budget_period if user_limits else "month", user_id=user.pk)
    series = usage_over_time(ReportFilter(since=usage.start, until=usage.end, user_id=user.pk), bucket="day")
    return {
        "form": form,
        "keys": [
            {"row": key, "state": _key_state(key), "limits": key_limits_text(limits_json(key))}
            for key in keys
        ],
        "limits": [readable_entry(entry) for entry in _limit_use(user, user_limits)],
        "allowed_models": user.allowed_models,
        "usage": usage.as_json(),
        "chart": daily_bars(series, usage.start, usage.end),
        "snippets": snippets(request.build_absolute_uri("/").rstrip("/")),
        "key_placeholder": KEY,
    }


@login_required
@require_POST
def key_create(request: HttpRequest) -> HttpResponse:
    form = NewKeyForm(request.POST)
    if not form.is_valid():
        context = _dashboard(request, request.user, form)  # type: ignore[arg-type]
        return render(request, "portal/dashboard.html", context, status=400)
    key, secret = client_key_create(
        user=request.user,  # type: ignore[arg-type]
        name=form.cleaned_data["name"],
        expires_at=form.cleaned_data["expires_on"],
    )
    # POST/redirect/GET: the secret rides in the session, never in the URL, and shows once.
    stash_secret(request, key_id=key.pk, secret=secret)
    return redirect("portal:key-created", key_id=key.pk)


@login_required
def key_created(request: HttpRequest, key_id: int) -> HttpResponse:
    key = get_object_or_404(ClientKey, pk=key_id, user=request.user)
    secret = pop_secret(request, key_id=key.pk)
    if secret is None:
        messages.info(request, f"The secret of {key.name!r} was shown once and cannot be shown again.")
        return redirect("portal:home")
    response = render(request, "portal/key_created.html", {"key": key, "secret": secret})
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    key = get_object_or_404(ClientKey, pk=key_id, user=request.user)
    client_key_revoke(key=key)
    messages.success(request, f"Key {key.name!r} ({key.prefix}…) is revoked.")
    return redirect("portal:home")
