"""Tool descriptions from docstrings in the three common styles (Google, reST, NumPy): the
summary is the first paragraph, each argument gets its description; odd docstrings never stop
a tool from loading."""

from __future__ import annotations

import pytest

from hive_server.services.tools.base import tool_from_function


def google(day: str, tag: str = "x") -> str:
    """Write the digest of one day,
    grouped by tag.

    Longer text that is not part of the description.

    Args:
        day (str): The UTC day,
            as YYYY-MM-DD.
        tag: Only this tag.

    Attributes:
        cache: not an argument.

    Returns:
        The path written.
    """
    return day + tag


def rest(day: str, tag: str = "x") -> str:
    """Write the digest of one day,
    grouped by tag.

    Longer text that is not part of the description.

    :param day: The UTC day,
        as YYYY-MM-DD.
    :type day: str
    :param tag: Only this tag.
    :returns: The path written.
    """
    return day + tag


def numpy(day: str, tag: str = "x") -> str:
    """Write the digest of one day,
    grouped by tag.

    Longer text that is not part of the description.

    Parameters
    ----------
    day : str
        The UTC day,
        as YYYY-MM-DD.
    tag : str, optional
        Only this tag.

    Returns
    -------
    str
        The path written.
    """
    return day + tag


@pytest.mark.parametrize("fn", [google, rest, numpy], ids=["google", "rest", "numpy"])
def test_each_style_gives_the_summary_and_the_argument_descriptions(fn) -> None:
    spec = tool_from_function(fn).spec
    assert spec.description == "Write the digest of one day, grouped by tag."
    props = spec.input_schema["properties"]
    assert props["day"]["description"] == "The UTC day, as YYYY-MM-DD."
    assert props["tag"]["description"] == "Only this tag."
    assert set(props) == {"day", "tag"}


def test_a_summary_directly_followed_by_args_stops_before_them() -> None:
    def run(query: str) -> str:
        """Run the query.
        Args:
            query: What to run.
        """
        return query

    spec = tool_from_function(run).spec
    assert spec.description == "Run the query."
    assert spec.input_schema["properties"]["query"]["description"] == "What to run."


def test_a_docstring_the_parser_trips_over_is_only_a_summary() -> None:
    def odd(text: str) -> str:
        return text

    # docstring_parser 0.18 raises IndexError on this one.
    odd.__doc__ = "Args:Yields:\n\nArgs:\n:    :rtype:x:param\t(int*=(int:Yields:\n\nmore"
    spec = tool_from_function(odd).spec
    assert spec.description == "Args:Yields:"
    assert "description" not in spec.input_schema["properties"]["text"]
