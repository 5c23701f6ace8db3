"""The raw material of simulated people: names, places, mail providers, products, campaigns.

Plain data, no logic. Lists are long enough that 20,000 people get varied names and unique
addresses, and short enough that common names repeat as they do in a real customer base.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The shop's own domain (an ``.example`` domain: it can never be a real mailbox).
SHOP_DOMAIN = "shop.example"
SHOP_URL = f"https://{SHOP_DOMAIN}"

FIRST_NAMES_DE = (
    "Jana", "Lukas", "Mia", "Leon", "Emma", "Finn", "Hannah", "Paul", "Lea", "Jonas",
    "Sophie", "Elias", "Marie", "Noah", "Lina", "Ben", "Anna", "Felix", "Laura", "Tim",
    "Jürgen", "Özlem", "Thomas", "Michael", "Andreas", "Stefan", "Sabine", "Petra", "Monika",
    "Ursula", "Claudia", "Katrin", "Tobias", "Julia", "Sebastian", "Nina", "Jörg", "Björn",
    "Käthe", "Günter", "Sören", "Mehmet", "Ayşe", "Fatma", "Ali", "Katarzyna", "Piotr",
    "Agnieszka", "Dmitri", "Olga", "Elena", "Marco", "Giulia", "Ines", "Frieda", "Karl",
    "Heinz", "Helga", "Renate", "Wolfgang", "Uwe", "Kerstin", "Anke", "Dirk", "Maik", "Silke",
    "Jan", "Nils", "Ole", "Greta", "Ida", "Mats", "Carla", "Luisa", "Moritz", "Maximilian",
    "Alexander", "Christina", "Franziska", "Johanna",
)  # fmt: skip
LAST_NAMES_DE = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
    "Schulz", "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
    "Schwarz", "Braun", "Zimmermann", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt",
    "Werner", "Schmitz", "Krause", "Meier", "Lehmann", "Schmid", "Schulze", "Maier", "Köhler",
    "Herrmann", "König", "Walter", "Mayer", "Huber", "Kaiser", "Fuchs", "Peters", "Lang",
    "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Schubert", "Vogel", "Friedrich", "Keller",
    "Günther", "Frank", "Berger", "Winkler", "Roth", "Beck", "Lorenz", "Baumann", "Franke",
    "Albrecht", "Schuster", "Simon", "Ludwig", "Böhm", "Winter", "Kraus", "Martin", "Schumacher",
    "Krämer", "Vogt", "Stein", "Jäger", "Otto", "Sommer", "Groß", "Seidel", "Heinrich", "Brandt",
    "Haas", "Yılmaz", "Kaya", "Demir", "Nowak", "Kowalski", "Wiśniewski", "Ivanov", "Rossi",
)  # fmt: skip
FIRST_NAMES_NL = ("Daan", "Sem", "Lieke", "Femke", "Sanne", "Bram", "Joost", "Anouk", "Ruben")
LAST_NAMES_NL = ("de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit")
FIRST_NAMES_GB = ("Oliver", "Amelia", "George", "Isla", "Harry", "Olivia", "Jack", "Emily")
LAST_NAMES_GB = ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Davies", "Evans")

#: Full names so common that several different people in the customer base carry them.
COMMON_NAMES = (
    ("Thomas", "Müller"),
    ("Anna", "Schmidt"),
    ("Michael", "Meyer"),
    ("Sabine", "Schneider"),
    ("Stefan", "Fischer"),
    ("Julia", "Weber"),
)

STREETS_DE = (
    "Hauptstraße", "Bahnhofstraße", "Gartenstraße", "Schulstraße", "Dorfstraße", "Bergstraße",
    "Lindenstraße", "Kirchstraße", "Waldstraße", "Ringstraße", "Schillerstraße", "Goethestraße",
    "Mühlenweg", "Am Markt", "Rosenweg", "Birkenweg", "Friedrich-Ebert-Straße", "Königsallee",
    "Münchner Straße", "Gartenweg", "Wiesenstraße", "Jahnstraße", "Blumenstraße", "Feldstraße",
    "Poststraße", "Mozartstraße", "Beethovenstraße", "Talstraße", "Lessingstraße",
    "Kastanienallee", "Uhlandstraße", "Höhenweg", "Parkstraße", "Grüner Weg", "Sonnenstraße",
    "Luisenstraße", "Wilhelmstraße", "Kaiserstraße", "Schloßstraße", "Brückenstraße",
)  # fmt: skip
STREETS_NL = ("Kerkstraat", "Dorpsstraat", "Prinsengracht", "Molenweg", "Stationsweg")
STREETS_GB = ("High Street", "Station Road", "Church Lane", "Victoria Road", "Mill Lane")


@dataclass(frozen=True)
class City:
    """A city with the shape of its postcodes and its telephone area code."""

    name: str
    country: str
    postcode_low: int
    postcode_high: int
    area_code: str  # national landline prefix without the leading 0


CITIES_DE = (
    City("Berlin", "DE", 10115, 14199, "30"),
    City("Hamburg", "DE", 20095, 22769, "40"),
    City("München", "DE", 80331, 81929, "89"),
    City("Köln", "DE", 50667, 51149, "221"),
    City("Frankfurt am Main", "DE", 60306, 60599, "69"),
    City("Stuttgart", "DE", 70173, 70619, "711"),
    City("Düsseldorf", "DE", 40210, 40629, "211"),
    City("Leipzig", "DE", 4103, 4357, "341"),
    City("Dortmund", "DE", 44135, 44388, "231"),
    City("Essen", "DE", 45127, 45359, "201"),
    City("Bremen", "DE", 28195, 28779, "421"),
    City("Dresden", "DE", 1067, 1328, "351"),
    City("Hannover", "DE", 30159, 30669, "511"),
    City("Nürnberg", "DE", 90402, 90491, "911"),
    City("Münster", "DE", 48143, 48167, "251"),
    City("Freiburg im Breisgau", "DE", 79098, 79117, "761"),
    City("Würzburg", "DE", 97070, 97084, "931"),
    City("Göttingen", "DE", 37073, 37085, "551"),
)
CITIES_AT = (City("Wien", "AT", 1010, 1230, "1"), City("Graz", "AT", 8010, 8063, "316"))
CITIES_NL = (
    City("Amsterdam", "NL", 1011, 1109, "20"),
    City("Rotterdam", "NL", 3011, 3089, "10"),
    City("Utrecht", "NL", 3511, 3585, "30"),
)
CITIES_GB = (City("London", "GB", 0, 0, "20"), City("Manchester", "GB", 0, 0, "161"))
#: British postcode districts per city (the outward code; the inward code is generated).
GB_DISTRICTS = {"London": ("SW1A", "N1", "E14", "SE10", "W2"), "Manchester": ("M1", "M14", "M20")}

#: Where customers live: (country, share).
COUNTRY_SHARES = (("DE", 0.86), ("AT", 0.05), ("NL", 0.05), ("GB", 0.04))

MAIL_DOMAINS = {
    "DE": ("gmail.com", "web.de", "gmx.de", "gmx.net", "t-online.de", "outlook.com", "yahoo.de",
           "hotmail.de", "icloud.com", "posteo.de"),
    "AT": ("gmail.com", "gmx.at", "aon.at", "outlook.com"),
    "NL": ("gmail.com", "ziggo.nl", "kpnmail.nl", "outlook.com"),
    "GB": ("gmail.com", "btinternet.com", "outlook.com", "yahoo.co.uk"),
}  # fmt: skip
#: Misspelt mail domains people really type.
DOMAIN_TYPOS = {
    "gmail.com": ("gmial.com", "gmai.com", "gmail.de", "gmal.com"),
    "web.de": ("wbe.de", "web.d", "we.de"),
    "gmx.de": ("gmx.dr", "gmc.de"),
    "t-online.de": ("tonline.de", "t-onlien.de"),
    "outlook.com": ("outlok.com", "outlook.de"),
}

#: German mobile prefixes (without the 0) and how many digits follow them.
MOBILE_PREFIXES_DE = (
    ("151", 8), ("152", 8), ("157", 8), ("160", 7), ("162", 7), ("170", 7),
    ("171", 7), ("172", 7), ("176", 8), ("177", 8), ("178", 8), ("179", 7),
)  # fmt: skip

#: E-mail addresses store staff type when a walk-in customer gives none; many people share them.
DUMMY_EMAILS = (
    "kunde@shop.de",
    "noemail@shop.de",
    "keine@mail.de",
    "test@test.de",
    f"guest@{SHOP_DOMAIN}",
    "null",
)
#: Shop-specific dummies no pattern list knows: only a cardinality limit can catch them.
SHOP_DUMMY_EMAILS = (
    f"filiale.berlin@{SHOP_DOMAIN}",
    f"filiale.hamburg@{SHOP_DOMAIN}",
    f"kasse3@{SHOP_DOMAIN}",
)
#: Phone numbers people give when they do not want to give theirs. The last two are valid
#: numbers (nobody in the simulated world has them), so only a junk list or a cardinality
#: limit keeps them from linking strangers.
FAKE_PHONES = ("0000000000", "0123456789", "01234567890", "0151 11111111", "0170 1234567")

CATEGORIES = ("damen", "herren", "kinder", "schuhe", "taschen", "sale", "wohnen", "sport")
PRODUCTS = tuple(f"SKU-{n:04d}" for n in range(1, 241))
CAMPAIGNS = ("black-friday", "sommer-sale", "sem-brand", "sem-generic", "retargeting-q3")
NEWSLETTERS = tuple(f"newsletter-kw{week:02d}" for week in range(1, 53, 3))
AFFILIATES = ("aff-cashback-101", "aff-voucher-202", "aff-blog-303", "aff-compare-404")
STORES = ("pos-berlin", "pos-hamburg", "pos-muenchen", "pos-koeln")


def product_price(product_id: str) -> str:
    """A stable price for a product, so repeated views of one product show one price."""
    number = int(product_id.rsplit("-", 1)[1])
    return f"{9 + (number * 37) % 180}.{(number * 7) % 10}0"


def product_category(product_id: str) -> str:
    """A stable category for a product."""
    return CATEGORIES[int(product_id.rsplit("-", 1)[1]) % len(CATEGORIES)]
