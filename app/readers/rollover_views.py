"""Views of this domain (registered from app.core.registry through `register`)."""


def register(appbuilder):
    pass
