"""Every domain's views and menus, registered in one place and in menu order."""
from flask_babel import lazy_gettext as _l


def register_views(appbuilder):
    from app.collection.views import LocationView
    from app.core.audit_views import AuditLogView
    from app.org.views import OrgLinkView, OrgUnitView, SchoolYearView

    add = appbuilder.add_view
    add(LocationView, "Shelving locations", label=_l("Shelving locations"), icon="fa-book",
        category="Library", category_label=_l("Library"), category_icon="fa-book-open")
    add(OrgUnitView, "Units", label=_l("Units"), icon="fa-sitemap",
        category="Organisation", category_label=_l("Organisation"), category_icon="fa-sitemap")
    add(OrgLinkView, "Placements in the tree", label=_l("Placements in the tree"),
        icon="fa-project-diagram", category="Organisation")
    add(SchoolYearView, "School years", label=_l("School years"), icon="fa-calendar",
        category="Organisation")
    add(AuditLogView, "Change history", label=_l("Change history"), icon="fa-history",
        category="Organisation")

    # Library work first; account administration ("Security") last.
    appbuilder.menu.menu.sort(key=lambda item: item.name == "Security")
