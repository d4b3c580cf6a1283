"""Every domain's models, imported together so that relationships resolve (and Alembic sees
them all)."""
from app.catalog import models as catalog_models  # noqa: F401
from app.circulation import models as circulation_models  # noqa: F401
from app.collection import models as collection_models  # noqa: F401
from app.core import audit  # noqa: F401
from app.org import models as org_models  # noqa: F401
from app.readers import models as reader_models  # noqa: F401
from app.serials import models as serial_models  # noqa: F401
from app.stocktake import models as stocktake_models  # noqa: F401
from app.weeding import models as weeding_models  # noqa: F401
from app.core import cache  # noqa: F401
