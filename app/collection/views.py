from app.core.datamodel import VNInterface as SQLAInterface
from flask_babel import lazy_gettext as _l

from app.collection.models import Location
from app.core.views import SchoolScopedModelView


class LocationView(SchoolScopedModelView):
    datamodel = SQLAInterface(Location)
    list_title = _l("Shelving locations")
    show_title = _l("Shelving location")
    add_title = _l("Add shelving location")
    edit_title = _l("Edit shelving location")
    label_columns = {
        "school": _l("School"),
        "code": _l("Code"),
        "name": _l("Name"),
        "kind": _l("Kind"),
        "is_active": _l("In use"),
        "note": _l("Note"),
    }
    list_columns = ["school", "code", "name", "kind", "is_active"]
    show_columns = ["school", "code", "name", "kind", "is_active", "note"]
    add_columns = edit_columns = ["code", "name", "kind", "is_active", "note"]
    search_columns = ["code", "name", "kind", "is_active"]
    base_order = ("code", "asc")
