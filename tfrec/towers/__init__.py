"""Towers: the query/user side and the item side of a two-tower model."""

from tfrec.towers.item_tower import ItemTower
from tfrec.towers.query_tower import QueryTower

__all__ = ["ItemTower", "QueryTower"]
