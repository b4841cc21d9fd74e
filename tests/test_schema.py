import pytest

from tfrec.schema import FeatureSchema, Kind, Role, SchemaError


def full_schema():
    return FeatureSchema(
        query_text="q",
        user_id="uid",
        user_categorical=["seg"],
        user_numeric=["tenure"],
        user_history="hist",
        item_id="sku",
        item_text="title",
        item_categorical=["cat", "brand"],
        item_price="price",
        click_label="clicked",
        value_label="ltv",
        relevance_label="grade",
        relevance_range=(1, 3),
        event_time="ts",
        history_length=5,
    )


def test_yaml_round_trip(tmp_path):
    schema = full_schema()
    path = tmp_path / "schema.yaml"
    schema.to_yaml(path)
    assert FeatureSchema.from_yaml(path) == schema
    assert FeatureSchema.from_yaml(schema.to_yaml()) == schema


def test_user_mapping_from_yaml_text():
    schema = FeatureSchema.from_yaml(
        "query_text: search\nitem_id: sku\nitem_categorical: category\nclick_label: clicked\n"
    )
    assert schema.item_categorical == ["category"]
    assert schema.feature_names == ["search", "sku", "category"]
    assert schema.label_names == ["clicked"]
    kinds = {c.name: c.kind for c in schema.columns()}
    assert kinds == {"search": Kind.TEXT, "sku": Kind.ID, "category": Kind.CATEGORICAL, "clicked": Kind.BINARY}


def test_roles_and_nullability():
    cols = {c.name: c for c in full_schema().columns()}
    assert cols["price"].role == Role.ITEM_PRICE
    assert cols["seg"].nullable and cols["tenure"].nullable and cols["hist"].nullable
    assert not cols["q"].nullable and not cols["clicked"].nullable


def test_unknown_field_is_named():
    with pytest.raises(SchemaError, match="item_title"):
        FeatureSchema.from_dict({"item_title": "title"})


def test_column_in_two_roles_is_an_error():
    with pytest.raises(SchemaError, match="'sku' is mapped to two roles"):
        FeatureSchema(item_id="sku", item_text="sku")


def test_bad_values_are_errors():
    with pytest.raises(SchemaError, match="relevance_range"):
        FeatureSchema(relevance_label="g", relevance_range=(3, 1))
    with pytest.raises(SchemaError, match="item_categorical"):
        FeatureSchema(item_id="a", item_categorical=[1, 2])
    with pytest.raises(SchemaError, match="maps no columns"):
        FeatureSchema()
    with pytest.raises(SchemaError, match="not found"):
        FeatureSchema.from_yaml("missing_schema.yaml")
