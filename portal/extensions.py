"""Flask extensions, created once and bound in create_app."""

from __future__ import annotations

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from portal.orm import Base

# Loaded rows stay readable after a commit: a view commits its work (and the
# audit rows of what it read) first, then renders, so the audit chain's lock
# is never held while a template renders. Lazy loads in the template run in a
# new, read-only transaction.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
