"""FAB's SQLAlchemy interface, sorting text the Vietnamese way in every list."""
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.utils.base import is_column_dotted
from sqlalchemy import Enum, String, asc, desc

from app.core.i18n import collate


class VNInterface(SQLAInterface):
    """Text columns sort with the Vietnamese collation (a ă â b c d đ e ê ...).

    A model may declare `__sort_with__ = {"first_name": ("last_name",)}` so that sorting by
    the given name breaks ties by the family and middle names (Vietnamese name order).
    """

    def apply_order_by(self, query, order_column, order_direction, aliases_mapping=None,
                       bypass_many_to_many=False, add_pk=False):
        column = None
        if order_column and not is_column_dotted(order_column):
            column = self.list_columns.get(order_column)
        if column is None or not isinstance(column.type, String) or isinstance(
                column.type, Enum):
            return super().apply_order_by(query, order_column, order_direction,
                                          aliases_mapping, bypass_many_to_many, add_pk)
        dialect = self.session.get_bind().dialect.name
        direction = asc if order_direction == "asc" else desc
        names = (order_column,) + tuple(
            getattr(self.obj, "__sort_with__", {}).get(order_column, ()))
        keys = [direction(collate(getattr(self.obj, name), dialect)) for name in names]
        pk = self.get_pk()
        if add_pk and pk is not None:
            keys.append(direction(pk))
        return query.order_by(*keys)
