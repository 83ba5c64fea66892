"""The repeat filter: one record per (logger, level, template) per window, and a count of the rest."""

import io
import logging

import pytest

from streams.logs import RepeatFilter, install_repeat_filter


@pytest.fixture
def captured():
    """A private logger with one stream handler carrying a RepeatFilter on a fake clock."""
    now = [0.0]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    handler.addFilter(RepeatFilter(window_s=10.0, clock=lambda: now[0]))
    logger = logging.getLogger("test.repeat." + str(id(stream)))
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, stream, now
    logger.removeHandler(handler)


def lines(stream):
    return stream.getvalue().splitlines()


def test_repeats_of_a_template_are_dropped_within_the_window_and_counted_after(captured):
    logger, stream, now = captured
    for node in range(50):   # different arguments, same template: repeats
        logger.error("Unable connect to node with id %s", node)
        now[0] += 0.1
    assert lines(stream) == [f"{logger.name} ERROR Unable connect to node with id 0"]
    now[0] = 10.0
    logger.error("Unable connect to node with id %s", 7)
    assert lines(stream)[1] == (f"{logger.name} ERROR Unable connect to node with id 7 "
                                f"[49 more like this suppressed in the last 10 s]")
    logger.error("Unable connect to node with id %s", 8)   # a new window has started
    now[0] = 25.0
    logger.error("Unable connect to node with id %s", 9)
    assert lines(stream)[2:] == [f"{logger.name} ERROR Unable connect to node with id 9 "
                                 f"[1 more like this suppressed in the last 15 s]"]


def test_templates_levels_and_loggers_are_counted_apart(captured):
    logger, stream, _ = captured
    child = logger.getChild("child")
    logger.error("a %s", 1)
    logger.error("b %s", 1)
    logger.warning("a %s", 1)
    child.error("a %s", 1)   # propagates to the same handler: another logger, its own window
    logger.error("a %s", 2)
    assert [line.split(" ", 1)[1] for line in lines(stream)] == ["ERROR a 1", "ERROR b 1", "WARNING a 1", "ERROR a 1"]
    assert lines(stream)[3].startswith(child.name)


def test_the_number_of_templates_remembered_is_bounded():
    repeat_filter = RepeatFilter(window_s=10.0, max_templates=3, clock=lambda: 0.0)
    for i in range(10):
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, f"message {i}", None, None)
        assert repeat_filter.filter(record)
    assert len(repeat_filter._windows) == 3
    # the oldest were forgotten, so they pass again; the newest is still a repeat
    assert repeat_filter.filter(logging.LogRecord("x", logging.ERROR, __file__, 1, "message 0", None, None))
    assert not repeat_filter.filter(logging.LogRecord("x", logging.ERROR, __file__, 1, "message 9", None, None))


def test_installed_on_each_handler_so_every_handler_sees_the_first_record():
    logger = logging.getLogger("test.repeat.install")
    logger.propagate = False
    streams = [io.StringIO(), io.StringIO()]
    handlers = [logging.StreamHandler(s) for s in streams]
    for handler in handlers:
        logger.addHandler(handler)
    try:
        filters = install_repeat_filter(logger, window_s=10.0)
        assert len(filters) == 2 and filters[0] is not filters[1]
        logger.error("once")
        logger.error("once")
        assert [s.getvalue() for s in streams] == ["once\n", "once\n"]
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
