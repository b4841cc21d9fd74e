"""Real English words per product category, used by the simulator's titles.

Each category has product nouns, descriptive attributes and brand names. The
simulator ties every attribute word to a direction in its latent item space,
so titles and queries carry the information a text tower can learn from.
"""

CATEGORIES = {
    "shoes": {
        "nouns": ["sneakers", "boots", "sandals", "loafers", "trainers"],
        "attributes": ["running", "leather", "hiking", "waterproof", "suede",
                       "lightweight", "winter", "canvas", "trail", "formal"],
        "brands": ["stride", "summit", "pacer", "cobbler"],
    },
    "kitchen": {
        "nouns": ["saucepan", "knife", "kettle", "blender", "skillet"],
        "attributes": ["stainless", "nonstick", "ceramic", "cast", "electric",
                       "chef", "copper", "induction", "bamboo", "glass"],
        "brands": ["hearth", "cuisine", "ember", "larder"],
    },
    "electronics": {
        "nouns": ["headphones", "speaker", "charger", "keyboard", "monitor"],
        "attributes": ["wireless", "bluetooth", "gaming", "portable", "noise",
                       "mechanical", "curved", "usb", "smart", "compact"],
        "brands": ["voltage", "pixel", "circuit", "quantum"],
    },
    "garden": {
        "nouns": ["hose", "planter", "shovel", "lawnmower", "seeds"],
        "attributes": ["organic", "flower", "vegetable", "terracotta", "cordless",
                       "expandable", "herb", "raised", "hanging", "outdoor"],
        "brands": ["meadow", "orchard", "willow", "fern"],
    },
    "toys": {
        "nouns": ["puzzle", "doll", "blocks", "robot", "kite"],
        "attributes": ["wooden", "educational", "plush", "remote", "building",
                       "magnetic", "musical", "jigsaw", "dinosaur", "rainbow"],
        "brands": ["giggle", "marble", "sprout", "rocket"],
    },
    "beauty": {
        "nouns": ["shampoo", "lipstick", "moisturiser", "perfume", "serum"],
        "attributes": ["vegan", "matte", "hydrating", "fragrance", "herbal",
                       "sensitive", "vitamin", "lavender", "coconut", "repair"],
        "brands": ["velvet", "bloom", "lustre", "petal"],
    },
    "sports": {
        "nouns": ["dumbbells", "racket", "yoga mat", "bicycle", "football"],
        "attributes": ["adjustable", "tennis", "foldable", "carbon", "training",
                       "resistance", "mountain", "indoor", "grip", "professional"],
        "brands": ["athlete", "victory", "sprint", "olympus"],
    },
    "books": {
        "nouns": ["novel", "cookbook", "atlas", "biography", "notebook"],
        "attributes": ["mystery", "history", "fantasy", "illustrated", "science",
                       "romance", "travel", "poetry", "children", "vegetarian"],
        "brands": ["quill", "chapter", "folio", "lantern"],
    },
    "furniture": {
        "nouns": ["sofa", "desk", "bookshelf", "armchair", "wardrobe"],
        "attributes": ["oak", "velvet", "reclining", "modular", "walnut",
                       "upholstered", "standing", "corner", "rustic", "storage"],
        "brands": ["timber", "cosy", "loft", "anchor"],
    },
    "pets": {
        "nouns": ["collar", "litter", "leash", "aquarium", "kibble"],
        "attributes": ["dog", "cat", "puppy", "grain", "reflective",
                       "chew", "scratching", "bird", "fish", "orthopedic"],
        "brands": ["paws", "whisker", "loyal", "burrow"],
    },
    "clothing": {
        "nouns": ["jacket", "jeans", "sweater", "dress", "shirt"],
        "attributes": ["denim", "wool", "cotton", "linen", "slim",
                       "hooded", "knitted", "floral", "striped", "cashmere"],
        "brands": ["thread", "tailor", "harbour", "nomad"],
    },
    "grocery": {
        "nouns": ["coffee", "tea", "chocolate", "pasta", "honey"],
        "attributes": ["roasted", "decaf", "dark", "green", "spicy",
                       "gluten", "fairtrade", "instant", "wholegrain", "raw"],
        "brands": ["pantry", "harvest", "mill", "grove"],
    },
}

# Attribute words shared by all categories; they carry no category meaning.
COLOURS = ["black", "white", "red", "blue", "green", "grey", "pink", "navy",
           "brown", "silver"]

# Typical price (in currency units) per category; items vary around it.
BASE_PRICE = {
    "shoes": 60.0, "kitchen": 35.0, "electronics": 90.0, "garden": 25.0,
    "toys": 20.0, "beauty": 15.0, "sports": 45.0, "books": 12.0,
    "furniture": 250.0, "pets": 18.0, "clothing": 40.0, "grocery": 6.0,
}

COUNTRIES = ["uk", "germany", "france", "spain", "netherlands", "ireland"]
SEGMENTS = ["new", "occasional", "regular", "loyal"]
