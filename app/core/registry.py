"""Every domain's views and menus, registered in one place and in menu order."""
from flask_babel import lazy_gettext as _l


def register_views(appbuilder):
    from app.catalog.views import (
        ClassificationSchemeView,
        ClassNumberView,
        DocumentTypeView,
        RecordView,
        UnionCatalogueView,
    )
    from app.collection.views import (
        AccessionSeriesView,
        CopyView,
        IntakeView,
        LibrarySettingsView,
        LocationView,
    )
    from app.core.audit_views import AuditLogView
    from app.org.views import OrgLinkView, OrgUnitView, SchoolYearView

    add = appbuilder.add_view
    lib = dict(category="Library", category_label=_l("Library"), category_icon="fa-book-open")
    add(RecordView, "Catalogue", label=_l("Catalogue"), icon="fa-book", **lib)
    add(UnionCatalogueView, "Union catalogue", label=_l("Union catalogue"), icon="fa-globe",
        **lib)
    add(CopyView, "Copies", label=_l("Copies"), icon="fa-barcode", **lib)
    from app.catalog.excel_views import CatalogueExcelView
    from app.collection.label_views import LabelView

    add(LabelView, "Print labels", label=_l("Print labels"), icon="fa-print", **lib)
    add(CatalogueExcelView, "Catalogue in Excel", label=_l("Catalogue in Excel"),
        icon="fa-file-excel", **lib)
    add(IntakeView, "General register – intakes", label=_l("General register – intakes"),
        icon="fa-truck", **lib)
    add(LocationView, "Shelving locations", label=_l("Shelving locations"), icon="fa-th",
        **lib)
    add(AccessionSeriesView, "Accession series", label=_l("Accession series"),
        icon="fa-list-ol", **lib)
    add(LibrarySettingsView, "Library settings", label=_l("Library settings"), icon="fa-cog",
        **lib)
    from app.catalog.marc_views import MarcView

    add(MarcView, "MARC", label=_l("MARC import and export"), icon="fa-exchange-alt", **lib)
    from app.registers.views import register as register_registers

    register_registers(appbuilder)  # the registers page (sổ sách), in the Library menu
    from app.serials.views import register as register_serials

    register_serials(appbuilder)  # newspapers and magazines: subscriptions, issues received

    # Each later domain registers its own views (one function each, in menu order).
    from app.circulation.views import register as register_circulation
    from app.readers.rollover_views import register as register_rollover
    from app.readers.views import register as register_readers
    from app.weeding.views import register as register_weeding

    register_weeding(appbuilder)
    register_circulation(appbuilder)
    register_readers(appbuilder)
    register_rollover(appbuilder)
    from app.stocktake.views import register as register_stocktake

    register_stocktake(appbuilder)
    from app.statistics.views import register as register_statistics

    register_statistics(appbuilder)
    add(OrgUnitView, "Units", label=_l("Units"), icon="fa-sitemap",
        category="Organisation", category_label=_l("Organisation"), category_icon="fa-sitemap")
    add(OrgLinkView, "Placements in the tree", label=_l("Placements in the tree"),
        icon="fa-project-diagram", category="Organisation")
    add(SchoolYearView, "School years", label=_l("School years"), icon="fa-calendar",
        category="Organisation")
    add(ClassificationSchemeView, "Classification schemes", label=_l("Classification schemes"),
        icon="fa-sitemap", category="Organisation")
    add(ClassNumberView, "Class numbers", label=_l("Class numbers"), icon="fa-list",
        category="Organisation")
    add(DocumentTypeView, "Document types", label=_l("Document types"), icon="fa-tags",
        category="Organisation")
    add(AuditLogView, "Change history", label=_l("Change history"), icon="fa-history",
        category="Organisation")

    # Library work first; account administration ("Security") last.
    appbuilder.menu.menu.sort(key=lambda item: item.name == "Security")
