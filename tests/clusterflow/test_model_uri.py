"""The one parser of model URIs (command line, scoring, registry)."""

import pytest

from clusterflow.errors import ConfigError
from clusterflow.model_uri import RegisteredURI, RunURI, parse_model_uri


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        ("models:/clusterflow@champion", RegisteredURI("", "clusterflow", alias="champion")),
        ("models:/clusterflow/3", RegisteredURI("", "clusterflow", version="3")),
        ("models:/my-model@challenger", RegisteredURI("", "my-model", alias="challenger")),
        ("runs:/0a1b2c/model", RunURI("", "0a1b2c")),
    ],
)
def test_the_three_forms_are_parsed(uri, parsed):
    from dataclasses import replace

    assert parse_model_uri(uri) == replace(parsed, uri=uri)


class _Client:
    def get_model_version_by_alias(self, name, alias):
        return ("alias", name, alias)

    def get_model_version(self, name, version):
        return ("version", name, version)


def test_a_registered_uri_asks_the_registry_for_its_version():
    assert parse_model_uri("models:/m@champion").model_version(_Client()) == (
        "alias",
        "m",
        "champion",
    )
    assert parse_model_uri("models:/m/7").model_version(_Client()) == ("version", "m", "7")


@pytest.mark.parametrize(
    "uri",
    [
        "/srv/models/model",
        "file:///srv/models/model",
        "http://host/model",
        "models:/",
        "models:/name",
        "models:/a/b/c",
        "runs:/abc",
        "runs:/abc/",
        "s3://bucket/model",
    ],
)
def test_anything_else_is_one_line_with_the_forms_to_use(uri):
    with pytest.raises(ConfigError) as err:
        parse_model_uri(uri)
    assert "models:/<name>@champion" in err.value.one_line()
