"""Test settings: fixed secrets, a test database live servers share (SQLite or PostgreSQL), fast hashing."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Set before ccsite.settings reads them; a developer's .env never leaks into a test run.
os.environ["CCSITE_ENV_FILE"] = ""
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("CLIENT_KEY_PEPPER", "test-pepper")
os.environ.setdefault("CREDENTIAL_ENCRYPTION_KEY", "dGVzdC1vbmx5LWtleS0wMTIzNDU2Nzg5YWJjZGVmMDE=")
if "CCSITE_DATA_DIR" not in os.environ:
    # Made by the test run's own process (live servers it starts inherit it) and removed at exit.
    os.environ["CCSITE_DATA_DIR"] = tempfile.mkdtemp(prefix="ccsite-test-")
    atexit.register(shutil.rmtree, os.environ["CCSITE_DATA_DIR"], ignore_errors=True)
# Nothing listens on port 9: a test that needs an upstream starts the simulator and says so.
os.environ.setdefault("CC_UPSTREAM_BASE_URL", "http://127.0.0.1:9")
os.environ.setdefault("CC_RETRY_BASE_DELAY", "0.01")
os.environ.setdefault("CC_RETRY_MAX_DELAY", "0.05")
# The test process writes request logs only when a test flushes them (a background writer would
# race the test's transactions); live servers turn the thread on (tests/conftest.py).
os.environ.setdefault("CCSITE_REQUEST_LOG_BACKGROUND", "0")
# No scheduled live refresh of the model catalog: tests refresh it when they mean to.
os.environ.setdefault("CCSITE_MODELS_REFRESH_SECONDS", "0")

from ccsite.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# A file (or a named PostgreSQL database), so a live Daphne started by a test
# (CCSITE_USE_TEST_DB=1) shares the test database.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    TEST_DB_NAME = str(Path(os.environ["CCSITE_DATA_DIR"]) / "test.sqlite3")
else:
    TEST_DB_NAME = f"test_{DATABASES['default']['NAME']}"  # noqa: F405
DATABASES["default"]["TEST"] = {"NAME": TEST_DB_NAME}  # noqa: F405
if os.environ.get("CCSITE_USE_TEST_DB") == "1":
    # Under pytest-xdist each worker's database carries its suffix (pytest-django adds
    # "_gw0", ...); a gateway started by a worker inherits PYTEST_XDIST_WORKER.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    DATABASES["default"]["NAME"] = f"{TEST_DB_NAME}_{worker}" if worker else TEST_DB_NAME  # noqa: F405
elif DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":  # noqa: F405
    # The test run's own sessions (their TRUNCATE between live tests) wait longer than a live
    # gateway's before PostgreSQL looks for a deadlock, so when the two meet the gateway's log
    # batch is the one aborted (its writer retries it), not the test's flush.
    DATABASES["default"]["OPTIONS"]["options"] = "-c deadlock_timeout=10s"  # noqa: F405
