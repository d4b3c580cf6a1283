"""Extension singletons shared by every domain (bound to an app in create_app)."""
from flask_appbuilder.models.sqla.base import SQLA
from flask_migrate import Migrate

from app.core.signing import VerifiedCSRFProtect

db = SQLA()
migrate = Migrate()
csrf = VerifiedCSRFProtect()  # Flask-WTF's CSRFProtect, verified tokens kept
