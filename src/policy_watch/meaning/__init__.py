"""What a change means for the reviewer: where the data goes, and which company it is.

- ``countries``: a location cell read into ISO 3166-1 alpha-2 codes, regions and unread text;
- ``transfers``: those places against the EEA and the EU adequacy decisions (GDPR chapter V);
- ``entities``: one name per company across vendors and spellings.

Pure: text in, frozen values out. The ISO data comes from pycountry, loaded on first use.
"""
