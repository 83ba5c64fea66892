"""The control room's view of the alert topics: what analysts and the live page read.

* :mod:`streams.control.book` — :class:`AlertBook` folds alert events (CloudEvents, as
  published) into the open alerts (raised, not yet cleared) and the intervention delays
  (raised → cleared); :class:`AlertFilter` selects events by domain, detector, severity,
  state, subject and time.
* :mod:`streams.control.feed` — :func:`follow_alerts` reads the alert topics with a plain
  consumer outside any group (every reader sees the whole city, whatever partitions a
  worker owns), from the beginning or from now, live or up to the current end.

Nothing here writes to Kafka or imports Faust; the CLI (``glasscity alerts``) and the
worker's page sit on top.
"""

from streams.control.book import AGE_BANDS, AlertBook, AlertFilter, Folded, OpenAlert, age_band
from streams.control.feed import FeedItem, follow_alerts

__all__ = ["AGE_BANDS", "AlertBook", "AlertFilter", "Folded", "OpenAlert", "age_band", "FeedItem", "follow_alerts"]
