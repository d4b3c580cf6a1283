"""Circulation screens other than the desk (registered from app.circulation.views.register)."""


def register(appbuilder):
    pass
