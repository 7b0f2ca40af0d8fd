"""The self-service pages: /, login/logout, own keys."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from portal import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="portal/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("keys/new", views.key_create, name="key-create"),
    path("keys/<int:key_id>/created", views.key_created, name="key-created"),
    path("keys/<int:key_id>/revoke", views.key_revoke, name="key-revoke"),
]
