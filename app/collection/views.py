from flask_appbuilder.widgets import ListWidget
from flask_babel import lazy_gettext as _l

from app.collection import services
from app.collection.models import AccessionSeries, Copy, Intake, LibrarySettings, Location
from app.core.datamodel import VNInterface as SQLAInterface
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


COPY_LABELS = {
    "school": _l("School"),
    "accession_label": _l("Accession number"),
    "accession_number": _l("Number"),
    "barcode": _l("Barcode"),
    "record": _l("Title"),
    "series": _l("Accession series"),
    "location": _l("Shelving location"),
    "intake": _l("General register line"),
    "status": _l("Status"),
    "price": _l("Price (VND)"),
    "funding": _l("Funding"),
    "acquisition_source": _l("Acquisition source"),
    "note": _l("Note"),
}


class CopyListWidget(ListWidget):
    """The list with a tick box per copy and "print labels for the selected copies": a GET
    to the labels page (LabelView), since printing only reads."""

    template = "collection/copy_list_widget.html"


class CopyView(SchoolScopedModelView):
    """Copies are added from their record (in bulk) and never deleted: their accession
    numbers stay in the register for ever (withdrawal keeps the row)."""

    datamodel = SQLAInterface(Copy)
    base_permissions = ["can_list", "can_show", "can_edit"]
    list_widget = CopyListWidget
    list_title = _l("Copies")
    show_title = _l("Copy")
    edit_title = _l("Edit copy")
    label_columns = COPY_LABELS
    list_columns = ["accession_label", "barcode", "record", "location", "status"]
    show_columns = ["school", "accession_label", "barcode", "record", "series", "location",
                    "intake", "status", "price", "funding", "acquisition_source", "note"]
    edit_columns = ["location", "status", "price", "note"]
    search_columns = ["accession_label", "barcode", "status", "series", "location"]
    base_order = ("id", "asc")
    item_validator = staticmethod(services.validate_copy)


class IntakeView(SchoolScopedModelView):
    datamodel = SQLAInterface(Intake)
    base_permissions = ["can_list", "can_show", "can_add", "can_edit"]
    list_title = _l("General register – intakes")
    show_title = _l("Intake")
    add_title = _l("Record an intake")
    edit_title = _l("Edit intake")
    label_columns = {
        "school": _l("School"),
        "register_number": _l("Register no."),
        "received_on": _l("Date"),
        "source": _l("Source"),
        "document_number": _l("Document no."),
        "funding": _l("Funding"),
        "note": _l("Note"),
    }
    list_columns = ["register_number", "received_on", "source", "document_number", "funding"]
    show_columns = ["school", "register_number", "received_on", "source", "document_number",
                    "funding", "note"]
    add_columns = edit_columns = ["received_on", "source", "document_number", "funding", "note"]
    search_columns = ["register_number", "received_on", "source", "document_number", "funding"]
    base_order = ("register_number", "desc")

    def pre_add(self, item):
        super().pre_add(item)
        # The running number of the general register (never resets, never reused).
        item.register_number = services.allocate(self.datamodel.session, item.school_id,
                                                 "intake")


class AccessionSeriesView(SchoolScopedModelView):
    datamodel = SQLAInterface(AccessionSeries)
    base_permissions = ["can_list", "can_show", "can_add", "can_edit"]
    list_title = _l("Accession series")
    show_title = _l("Accession series")
    add_title = _l("Add accession series")
    edit_title = _l("Edit accession series")
    label_columns = {
        "school": _l("School"), "code": _l("Code"), "name": _l("Name"),
        "prefix": _l("Prefix"), "separator": _l("Separator"), "padding": _l("Digits"),
        "is_textbook": _l("Textbooks (numbered per title and volume)"),
    }
    list_columns = ["code", "name", "prefix", "separator", "padding", "is_textbook"]
    add_columns = edit_columns = ["code", "name", "prefix", "separator", "padding",
                                  "is_textbook"]
    base_order = ("code", "asc")
    item_validator = staticmethod(services.validate_series)


class LibrarySettingsView(SchoolScopedModelView):
    datamodel = SQLAInterface(LibrarySettings)
    base_permissions = ["can_list", "can_show", "can_edit"]
    list_title = _l("Library settings")
    show_title = _l("Library settings")
    edit_title = _l("Edit library settings")
    label_columns = {
        "school": _l("School"), "scheme": _l("Classification scheme"),
        "author_mark_rule": _l("Author mark"), "author_mark_length": _l("Letters in the mark"),
        "barcode_prefix": _l("Barcode prefix"),
    }
    list_columns = ["school", "scheme", "author_mark_rule", "author_mark_length",
                    "barcode_prefix"]
    edit_columns = ["scheme", "author_mark_rule", "author_mark_length", "barcode_prefix"]
