"""Synthetic but realistic vendor subprocessor pages, shared by the benchmarks.

Each page is about 60 KB: a head full of meta tags and inline scripts, a large navigation
menu, 2-4 tables of 8-25 rows (entity / purpose / country) under section headings, a
"Last updated" date, and a long footer. Everything is derived from the vendor index, so two
runs generate the same bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

COUNTRIES = (
    "United States",
    "Ireland",
    "Germany",
    "Netherlands",
    "France",
    "United Kingdom",
    "Canada",
    "Japan",
    "Singapore",
    "Australia",
    "India",
    "Brazil",
    "Sweden",
    "Poland",
    "Switzerland",
    "Belgium",
    "Spain",
    "Italy",
    "Israel",
    "South Korea",
)
PURPOSES = (
    "Cloud hosting and infrastructure",
    "Content delivery network",
    "Customer support ticketing",
    "Email delivery",
    "Payment processing",
    "Product analytics",
    "Error monitoring",
    "Data warehousing",
    "Identity verification",
    "SMS and voice messaging",
    "Backup storage",
    "Fraud prevention",
    "Translation services",
    "Security monitoring",
    "Customer communications",
    "Search infrastructure",
    "Billing and invoicing",
    "Log management",
    "Video conferencing",
    "Machine learning inference",
)
_SYLLABLES = (
    "ak",
    "ar",
    "bel",
    "cor",
    "da",
    "el",
    "fin",
    "gra",
    "hel",
    "io",
    "ka",
    "lum",
    "mar",
    "nex",
    "or",
    "pla",
    "quo",
    "ra",
    "sol",
    "tor",
    "ul",
    "ver",
    "wex",
    "zen",
    "tri",
    "vo",
    "sta",
    "lin",
)
_SUFFIXES = ("Inc.", "LLC", "Ltd.", "GmbH", "B.V.", "S.A.S.", "Corp.", "Limited", "AB", "Pty Ltd")
SECTION_TITLES = (
    "Infrastructure subprocessors",
    "Service-specific subprocessors",
    "Customer support subprocessors",
    "Affiliates",
    "Payment subprocessors",
    "Analytics subprocessors",
)
_WORDS = (
    "data",
    "privacy",
    "security",
    "platform",
    "customers",
    "trust",
    "service",
    "product",
    "team",
    "compliance",
    "solutions",
    "enterprise",
    "pricing",
    "partners",
    "developers",
    "resources",
    "api",
    "integrations",
    "careers",
    "press",
    "events",
    "blog",
    "docs",
    "status",
    "community",
    "webinars",
)
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True, slots=True)
class Row:
    entity: str
    purpose: str
    country: str


@dataclass(frozen=True, slots=True)
class VendorPage:
    """The content of one vendor's page: what changes between runs."""

    index: int
    name: str
    sections: tuple[tuple[str, tuple[Row, ...]], ...]
    updated: date
    revision: int = 0

    @property
    def entity_count(self) -> int:
        return sum(len(rows) for _, rows in self.sections)


def vendor_name(i: int) -> str:
    rng = random.Random(f"name-{i}")
    return f"{rng.choice(_SYLLABLES).title()}{rng.choice(_SYLLABLES)}{rng.choice(_SYLLABLES)} {i:04d}"


def _entity(rng: random.Random, taken: set[str]) -> str:
    while True:
        parts = [rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))]
        name = f"{''.join(parts).title()} {rng.choice(('Cloud', 'Systems', 'Labs', 'Networks', 'Data', 'Software', 'Technologies', 'Services'))} {rng.choice(_SUFFIXES)}"
        if name not in taken:
            taken.add(name)
            return name


def make_vendor(i: int) -> VendorPage:
    rng = random.Random(f"vendor-{i}")
    taken: set[str] = set()
    titles = rng.sample(SECTION_TITLES, rng.randint(2, 4))
    sections = tuple(
        (
            t,
            tuple(
                Row(_entity(rng, taken), rng.choice(PURPOSES), rng.choice(COUNTRIES))
                for _ in range(rng.randint(8, 25))
            ),
        )
        for t in titles
    )
    updated = date(2024, 1, 1) + timedelta(days=rng.randint(0, 500))
    return VendorPage(index=i, name=vendor_name(i), sections=sections, updated=updated)


def mutate(page: VendorPage, rng: random.Random, today: date | None = None) -> VendorPage:
    """One realistic edit: an entity added (60%) or an entity's country or purpose changed."""
    sections = [list(rows) for _, rows in page.sections]
    s = rng.randrange(len(sections))
    if rng.random() < 0.6:
        taken = {r.entity for rows in sections for r in rows}
        sections[s].insert(
            rng.randint(0, len(sections[s])),
            Row(_entity(rng, taken), rng.choice(PURPOSES), rng.choice(COUNTRIES)),
        )
    else:
        k = rng.randrange(len(sections[s]))
        row = sections[s][k]
        if rng.random() < 0.5:
            row = replace(row, country=rng.choice([c for c in COUNTRIES if c != row.country]))
        else:
            row = replace(row, purpose=rng.choice([p for p in PURPOSES if p != row.purpose]))
        sections[s][k] = row
    updated = max(page.updated + timedelta(days=1), today or page.updated)
    return replace(
        page,
        sections=tuple((t, tuple(r)) for (t, _), r in zip(page.sections, sections, strict=True)),
        updated=updated,
        revision=page.revision + 1,
    )


def _human_date(d: date) -> str:
    return f"{_MONTHS[d.month - 1]} {d.day}, {d.year}"


def _head(page: VendorPage, rng: random.Random) -> list[str]:
    slug = page.name.lower().replace(" ", "-")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en-US">',
        "<head>",
        '  <meta charset="utf-8">',
        '  <meta name="viewport" content="width=device-width, initial-scale=1">',
        f"  <title>Subprocessors | {page.name}</title>",
        f'  <meta name="description" content="The third parties {page.name} uses to process customer data.">',
        f'  <link rel="canonical" href="https://www.{slug}.example/legal/subprocessors">',
    ]
    for n in range(12):
        out.append(
            f'  <link rel="preload" as="font" crossorigin href="https://cdn.{slug}.example/fonts/f{n}.woff2">'
        )
    # A large inline bootstrap blob, as server-rendered apps ship.
    state = ",".join(
        f'"{rng.choice(_WORDS)}_{n}":{{"id":{rng.randint(1, 99999)},"label":"{rng.choice(_WORDS)} '
        f'{rng.choice(_WORDS)}","enabled":{str(rng.random() < 0.5).lower()}}}'
        for n in range(215)
    )
    out.append(f"  <script>window.__INITIAL_STATE__={{{state}}};</script>")
    js = ";".join(
        f"function _{rng.choice(_WORDS)}{n}(a,b){{return a&&a.{rng.choice(_WORDS)}?b({n}):null}}"
        for n in range(180)
    )
    out.append(f"  <script>(function(w,d){{{js}}})(window,document);</script>")
    out.append(
        f'  <script defer src="https://cdn.{slug}.example/js/app.{rng.getrandbits(32):08x}.js"></script>'
    )
    out.append("</head>")
    return out


def _nav(page: VendorPage, rng: random.Random) -> list[str]:
    out = [
        '<header class="site-header">',
        '  <nav class="mega-menu" aria-label="Main">',
        '    <ul class="menu">',
    ]
    for group in range(9):
        out.append(
            f'      <li class="menu__group"><button aria-expanded="false">{rng.choice(_WORDS).title()}</button>'
        )
        out.append('        <ul class="menu__panel">')
        for n in range(16):
            a, b = rng.choice(_WORDS), rng.choice(_WORDS)
            out.append(
                f'          <li><a class="menu__link" href="/{a}/{b}-{group}-{n}">{a.title()} {b}</a>'
                f'<span class="menu__hint">{b.title()} for {a}</span></li>'
            )
        out.append("        </ul></li>")
    out += ["    </ul>", "  </nav>", "</header>"]
    return out


def _tables(page: VendorPage) -> list[str]:
    out = [
        '<main id="main-content" class="legal">',
        f"  <h1>{page.name} subprocessors</h1>",
        f'  <p class="updated">Last updated: {_human_date(page.updated)}</p>',
        f"  <p>{page.name} uses the third parties below to provide its services. We give notice of new "
        "subprocessors before they start processing customer data.</p>",
    ]
    for title, rows in page.sections:
        out.append(f"  <h2>{title}</h2>")
        out.append('  <table class="subprocessors">')
        out.append("    <thead><tr><th>Entity</th><th>Purpose</th><th>Country</th></tr></thead>")
        out.append("    <tbody>")
        for r in rows:
            out.append(f"      <tr><td>{r.entity}</td><td>{r.purpose}</td><td>{r.country}</td></tr>")
        out.append("    </tbody>")
        out.append("  </table>")
    out.append("</main>")
    return out


def _footer(page: VendorPage, rng: random.Random) -> list[str]:
    out = ['<footer class="site-footer">']
    for col in range(6):
        out.append(f'  <div class="footer__col"><h3>{rng.choice(_WORDS).title()}</h3><ul>')
        for n in range(14):
            w = rng.choice(_WORDS)
            out.append(f'    <li><a href="/{w}/{col}/{n}">{w.title()} {rng.choice(_WORDS)}</a></li>')
        out.append("  </ul></div>")
    legal = " ".join(rng.choice(_WORDS) for _ in range(260))
    out.append(f'  <p class="footer__legal">© {page.updated.year} {page.name}. {legal}.</p>')
    out.append(
        '  <div id="consent-banner" hidden><p>We use cookies to improve your experience.</p>'
        "<button>Accept</button><button>Settings</button></div>"
    )
    out += ["</footer>", "</body>", "</html>"]
    return out


def render(page: VendorPage) -> str:
    rng = random.Random(f"chrome-{page.index}")  # the boilerplate stays the same across revisions
    body = ['<body class="page-legal">']
    return "\n".join(_head(page, rng) + body + _nav(page, rng) + _tables(page) + _footer(page, rng)) + "\n"


def page_file(root: Path, i: int) -> Path:
    return root / f"v{i:04d}.html"


def write_pages(root: Path, pages: list[VendorPage]) -> int:
    """Write every page; returns the total bytes written."""
    root.mkdir(parents=True, exist_ok=True)
    total = 0
    for p in pages:
        data = render(p).encode()
        page_file(root, p.index).write_bytes(data)
        total += len(data)
    return total
