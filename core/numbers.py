"""Phone numbers: the vocabulary every capability shares (libphonenumber's data).

For now: which regions exist. A region is the country whose numbers are written without a
country code (``dialer.region``, ``--region``); a wrong one is refused up front, before it
silently makes every national number invalid.
"""

from __future__ import annotations

import phonenumbers


def check_region(region: str, where: str = "region") -> str:
    """``region`` as an ISO 3166 code libphonenumber knows (upper case), or ValueError.

    >>> check_region("fr")
    'FR'
    >>> check_region("XX", "--region")
    Traceback (most recent call last):
    ...
    ValueError: --region: 'XX' is not a country code (ISO 3166, e.g. US, GB, FR)
    """
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{where}: {region!r} is not a country code (ISO 3166, e.g. US, GB, FR)")
    return code
