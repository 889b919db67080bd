"""Word lists and the name makers of the synthetic MPD: artists, songs, albums and playlist titles."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from segue.data.synth.genres import GENRE_TABLE, GENRES, N_GENRES, flavour_table, split_words

_ALPHABET = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijective scramble of 64-bit integers (wraps modulo 2**64 by design)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class IdDraws:
    """Random numbers keyed by ids: the same id gets the same draws whichever other ids are asked with.

    Stands in for :class:`numpy.random.Generator` (``random``, ``integers``) in the name makers, so the names of
    a catalogue too large to name up front can be made for just the songs a block of playlists uses, and always
    come out the same. Draw number ``k`` of an id depends only on ``(seed, stream, id, k)``.
    """

    def __init__(self, seed: int, stream: int, ids: np.ndarray):
        key = _mix(np.array([seed * 0x10001 + stream], dtype=np.uint64))
        self._base = _mix(np.asarray(ids, dtype=np.uint64) ^ key)
        self._calls = 0

    def _bits(self, size) -> np.ndarray:
        n, width = (size, None) if np.isscalar(size) else size
        if n != len(self._base):
            raise ValueError(f"IdDraws gives one row per id ({len(self._base)}), not {n}")
        self._calls += 1
        cols = _mix(np.arange(width or 1, dtype=np.uint64) + np.uint64(self._calls << 16))
        bits = _mix(self._base[:, None] + cols[None, :])
        return bits[:, 0] if width is None else bits

    def random(self, size) -> np.ndarray:
        return (self._bits(size) >> np.uint64(11)).astype(np.float64) * 2.0**-53

    def integers(self, low: int, high: int, size, dtype=np.int64) -> np.ndarray:
        return (low + (self._bits(size) % np.uint64(high - low)).astype(np.int64)).astype(dtype)


def spotify_uris(rng, kind: str, n: int) -> list[str]:
    """``spotify:<kind>:`` plus 22 base-62 characters per item."""
    codes = _ALPHABET[rng.integers(0, 62, size=(n, 22), dtype=np.uint8)]
    ids = codes.view("S22").ravel().astype("U22").tolist()
    prefix = f"spotify:{kind}:"
    return [prefix + s for s in ids]


GENERIC_TITLES = split_words(
    "my playlist|My Playlist|summer|Summer|summer 2017|Summer 2016|new|New Playlist|jams|Jams|feels|lit|Lit|vibes|"
    "Vibes|good vibes|music|Music|random|mix|road trip|Road Trip|favorites|Favorites|2017|2016|songs|car|car songs|"
    "my songs|playlist|✨|💯|🔥🔥|summer 🌴|fall|Fall|spring|spring 2016|bops|bangers|shower|driving|Drive|songs i like|"
    "ok|stuff|Liked|mood|Mood|🙌|sun|beach|daily mix|favs|my jams|june|july|August|2015|work|Work|late nights"
)
_GENERIC_EMOJI = split_words("🔥|✨|💯|🎶|😎|🙌|💫|🌞")
_TITLE_SUFFIX = split_words("mix|2017|2016|playlist|songs|jams|music|vibes|hits|favorites|!!|2.0|pt. 2|2k17|forever|only")
_TITLE_PREFIX = split_words("my|new|best|summer|old|good|more|all the")

_ADJ = split_words(
    "Golden|Broken|Wild|Lonely|Electric|Silver|Little|Crazy|Young|Sweet|Dark|Bright|Lost|Endless|Hidden|Perfect|"
    "Shallow|Heavy|Empty|Burning|Quiet|Secret|Fading|Blue|Red|Green|Purple|Cold|Warm|Restless|Fearless|Beautiful|"
    "Dangerous|Holy|Strange|Simple|Better|Last|First|Lucky|Neon|Velvet|Paper|Crystal|Summer|Midnight|Northern|"
    "Southern|Gentle|Savage|Honest|Hollow|Sacred|Painted|Faded|Higher|Brave|Tender|Bitter|Rolling"
)
_NOUN = split_words(
    "Heart|Fire|Rain|River|Road|Night|Light|Dream|Star|Love|Ghost|Ocean|Mountain|City|Home|Sky|Shadow|Storm|Song|"
    "Summer|Winter|Angel|Diamond|Thunder|Window|Mirror|Garden|Highway|Horizon|Echo|Memory|Promise|Kingdom|Wolf|"
    "Moon|Sun|Flame|Wave|Stone|Heaven|Bridge|Train|Letter|Game|Party|Feeling|Fever|Rhythm|Signal|Paradise|Daylight|"
    "Stranger|Lover|Hero|Soldier|Rebel|Sinner|Runaway|Weekend|Morning|Island|Tide|Canyon|Valley|Lantern|Compass|"
    "Satellite|Harbor|Rose|Bullet|Crown|Circle|Secret|Wonder|Gravity|Silence|Thunderbird|Velvet|Chrome|Sugar"
)
_VERB = split_words(
    "Hold|Take|Save|Call|Tell|Love|Leave|Kiss|Show|Need|Find|Want|Chase|Wake|Miss|Trust|Catch|Shake|Move|Lift|"
    "Carry|Forget|Remember|Follow|Break|Hurt|Touch|Free|Let|Keep"
)
_OBJ = split_words("Me|You|It|Us|Her|Him|Them|Me Now|You Down|It Up")
_ADV = split_words("Close|Tonight|Down|Now|Again|Forever|Home|Away|Slow|Back|Right|Loose|Tight|Under|On")
_FIRST = split_words(
    "Jake|Emma|Luke|Mason|Ava|Cole|Riley|Dylan|Harper|Tyler|Jordan|Maddie|Carter|Brooke|Hunter|Lily|Austin|Chloe|"
    "Wyatt|Sadie|Bailey|Chase|Kelsey|Brandon|Jenna|Miles|Nora|Grant|Hailey|Caleb|Tessa|Logan|Avery|Blake|Megan|"
    "Derek|Paige|Travis|Sienna|Elliot|Rosa|Marcus|Lena|Owen|Ivy|Jesse|Camila|Reed|Skylar|Dean|Willa|Quinn|Felix|"
    "June|Silas|Maya|Nico|Ruby|Ezra|Hazel"
)
_LAST = split_words(
    "Carter|Hayes|Brooks|Wells|Parker|Reed|Bennett|Sawyer|Collins|Hart|Foster|Lane|Morgan|Grady|Walker|Dalton|"
    "Bishop|Shaw|Holloway|Pryce|Monroe|Keller|Vance|Ellison|Harlow|Mercer|Quinn|Ramsey|Sloane|Whitfield|Lowell|"
    "Barrett|Crane|Fischer|Garrett|Hollis|Jensen|Kingsley|Lockhart|Maddox|Nash|Oakley|Pearce|Rhodes|Sutton|Tate|"
    "Underwood|Voss|Winslow|Yates|Ashford|Calloway|Draper|Fairchild|Greer"
)
_PLURAL = split_words(
    "Wolves|Lions|Kids|Saints|Ghosts|Strangers|Arrows|Pilots|Shadows|Lovers|Rivers|Giants|Wildflowers|Kings|"
    "Sparrows|Dreamers|Outlaws|Foxes|Tigers|Echoes|Satellites|Canyons|Lanterns|Hounds|Drifters|Comets|Bandits"
)
_RAP_WORDS = split_words(
    "Ghost|Smoke|Prince|Hustle|Savage|Drip|Kash|Nova|Blaze|Vibe|Boss|Flex|Chief|Ace|Gucci|Pablo|Tank|Rico|Slim|"
    "Zay|Dre|Jay|Tee|Mookie|Tre|Quez|Nino|Skeez|Milli|Benji"
)
_ES_FIRST = split_words("Carlos|Lucía|Mateo|Valentina|Diego|Camila|Javier|Sofía|Alejandro|Daniela|Luis|Mariana|Andrés|Isabela")
_ES_LAST = split_words("Rivera|Morales|Castillo|Vega|Herrera|Ortiz|Navarro|Ramos|Delgado|Fuentes|Reyes|Mendoza|Santos|Cruz")
_ES_WORDS = split_words("Fuego|Ritmo|Calle|Sol|Luna|Noche|Cielo|Oro|Tormenta|Corazón|Sabor|Tropical")
_PLACES = split_words("Hillside|Bethel Creek|Riverstone|New Harbor|Cornerstone|Oakwood|Redeemer|Highland|Summit|Living Water")
_COMPOSERS = split_words(
    "Albrecht|Beaumont|Castellano|Dvorin|Ehrlich|Fauré-Lind|Grieving|Halvorsen|Ivanova|Janáček-Bell|Kessler|"
    "Lindqvist|Marchetti|Novak|Orlov|Petrenko|Rautavaara|Sorensen|Tavernier|Valtonen"
)
_WORKS = split_words("Sonatas|Nocturnes|Symphony No. 3|Piano Works|Preludes|String Quartets")
_KEYS = split_words("C Major|D Minor|E-Flat Major|G Minor|A Major|B-Flat Minor|F Major|C-Sharp Minor")

# playlist title -> description templates (about 2% of playlists have a description, as in the MPD)
DESCRIPTIONS = split_words(
    "my favorite {g} songs|the best {g} songs|{g} vibes only|for when you need some {g}|a little {g} and a little "
    "{g2}|updated every week|songs for the drive|enjoy!|what i'm listening to right now|all the {g} you need"
)


def artist_names_for(rng: np.random.Generator, genres: np.ndarray) -> list[str]:
    styles = [GENRE_TABLE[g][5] for g in range(N_GENRES)]
    n = len(genres)
    u = rng.random(n).tolist()
    a = rng.integers(0, 1 << 30, size=(n, 3)).tolist()
    out = []
    for i, g in enumerate(genres.tolist()):
        style, r, (x, y, z) = styles[g], u[i], a[i]
        first, last = _FIRST[x % len(_FIRST)], _LAST[y % len(_LAST)]
        if style == "person":
            name = (
                f"{first} {last}" if r < 0.7 else
                f"The {last} Brothers" if r < 0.78 else
                f"{_ADJ[z % len(_ADJ)]} {_NOUN[x % len(_NOUN)]}" if r < 0.9 else
                f"{first} & the {_PLURAL[z % len(_PLURAL)]}"
            )
        elif style == "band":
            name = (
                f"The {_ADJ[x % len(_ADJ)]} {_PLURAL[y % len(_PLURAL)]}" if r < 0.35 else
                f"{_NOUN[x % len(_NOUN)]} {_NOUN[z % len(_NOUN)]}" if r < 0.55 else
                f"{_ADJ[y % len(_ADJ)]} {_NOUN[z % len(_NOUN)]}" if r < 0.75 else
                f"The {_PLURAL[z % len(_PLURAL)]}" if r < 0.85 else
                f"{first} {last}"
            )
        elif style == "rap":
            w = _RAP_WORDS[x % len(_RAP_WORDS)]
            name = (
                f"Lil {w}" if r < 0.25 else
                f"Young {first}" if r < 0.4 else
                f"{w} {_RAP_WORDS[z % len(_RAP_WORDS)]}" if r < 0.55 else
                f"MC {w}" if r < 0.62 else
                f"{w}{y % 100}" if r < 0.72 else
                f"{first} {w}" if r < 0.85 else
                f"{w} Da {_NOUN[z % len(_NOUN)]}"
            )
        elif style == "dj":
            name = (
                f"DJ {_NOUN[x % len(_NOUN)]}" if r < 0.3 else
                f"{_NOUN[x % len(_NOUN)]}{_NOUN[y % len(_NOUN)].lower()}" if r < 0.55 else
                f"{_ADJ[y % len(_ADJ)].upper()}" if r < 0.65 else
                f"{first} {last}" if r < 0.85 else
                f"{_NOUN[z % len(_NOUN)]} & {_NOUN[x % len(_NOUN)]}"
            )
        elif style == "worship":
            name = (
                f"{_PLACES[x % len(_PLACES)]} Worship" if r < 0.35 else
                f"{_PLACES[x % len(_PLACES)]} Music" if r < 0.45 else
                f"{_NOUN[y % len(_NOUN)]} Collective" if r < 0.55 else
                f"{first} {last}"
            )
        elif style == "ensemble":
            name = (
                f"The {first} {last} {('Trio', 'Quartet', 'Quintet', 'Band')[z % 4]}" if r < 0.4 else
                f"{first} {last}"
            )
        elif style == "classical":
            name = (
                f"{_COMPOSERS[x % len(_COMPOSERS)]} Symphony Orchestra" if r < 0.25 else
                f"{_PLACES[y % len(_PLACES)]} String Quartet" if r < 0.4 else
                f"{first} {_COMPOSERS[z % len(_COMPOSERS)]}" if r < 0.8 else
                f"{_COMPOSERS[x % len(_COMPOSERS)]} Piano Ensemble"
            )
        elif style == "latin":
            name = (
                f"{_ES_FIRST[x % len(_ES_FIRST)]} {_ES_LAST[y % len(_ES_LAST)]}" if r < 0.45 else
                f"Los {_ES_WORDS[z % len(_ES_WORDS)]}s" if r < 0.55 else
                f"DJ {_ES_WORDS[z % len(_ES_WORDS)]}" if r < 0.7 else
                f"{_ES_FIRST[x % len(_ES_FIRST)]} {_ES_WORDS[z % len(_ES_WORDS)]}" if r < 0.85 else
                f"{_ES_WORDS[x % len(_ES_WORDS)]} y {_ES_WORDS[z % len(_ES_WORDS)]}"
            )
        else:  # cast
            name = (
                f"{first} {last}" if r < 0.55 else
                f"Cast of {_ADJ[x % len(_ADJ)]} {_NOUN[y % len(_NOUN)]}" if r < 0.8 else
                f"The {_ADJ[z % len(_ADJ)]} {_PLURAL[x % len(_PLURAL)]} Choir"
            )
        out.append(name)
    return out


def track_names_for(rng, genres: np.ndarray, artists: np.ndarray, name_artists: Callable[[np.ndarray], list[str]],
                    genre_artists: list[np.ndarray]) -> list[str]:
    """Song names in the genres' styles; some rap/pop/dance songs credit another artist of their genre ("feat.")."""
    n = len(genres)
    flav_words, flav_off = flavour_table()
    flen = np.diff(flav_off)
    f1 = (flav_off[genres] + (rng.random(n) * flen[genres]).astype(np.int64)).tolist()
    f2 = (flav_off[genres] + (rng.random(n) * flen[genres]).astype(np.int64)).tolist()
    pattern = np.searchsorted(
        np.cumsum([0.14, 0.09, 0.09, 0.06, 0.05, 0.15, 0.09, 0.07, 0.04, 0.1, 0.04, 0.04, 0.04]), rng.random(n)
    ).tolist()
    idx = rng.integers(0, 1 << 30, size=(n, 4)).tolist()
    genre_list = genres.tolist()
    suffix = rng.random(n)
    feat_pick = rng.integers(0, 1 << 30, size=n)
    feat_genres = [GENRES.index(g) for g in ("rap", "r&b", "edm", "pop", "latin", "party", "workout")]
    remaster = {GENRES.index(g) for g in ("oldies", "rock", "jazz", "throwback")}
    # the featured artist: one of the song's genre, by the song's pick; never the song's own artist
    featured = np.full(n, -1, dtype=np.int64)
    for g in feat_genres:
        rows = np.flatnonzero((genres == g) & (suffix < 0.14))
        pool = genre_artists[g]
        featured[rows] = pool[feat_pick[rows] % len(pool)]
    feat_rows = np.flatnonzero((featured >= 0) & (featured != artists))
    feat_names = dict(zip(feat_rows.tolist(), name_artists(featured[feat_rows])))
    suffix_u = suffix.tolist()
    feat_set = set(feat_genres)
    la, ln, lv, lo, lad, lf = len(_ADJ), len(_NOUN), len(_VERB), len(_OBJ), len(_ADV), len(_FIRST)
    out = []
    for i in range(n):
        p, (a, b, c, d) = pattern[i], idx[i]
        F, F2 = flav_words[f1[i]], flav_words[f2[i]]
        if p == 0:
            s = f"{_ADJ[a % la]} {_NOUN[b % ln]}"
        elif p == 1:
            s = _NOUN[b % ln]
        elif p == 2:
            s = f"{_VERB[c % lv]} {_OBJ[d % lo]}"
        elif p == 3:
            s = f"{_NOUN[b % ln]} of {_NOUN[d % ln]}"
        elif p == 4:
            s = f"The {_NOUN[a % ln]}"
        elif p == 5:
            s = f"{F} {_NOUN[b % ln]}" if F != F2 else F
        elif p == 6:
            s = f"{_ADJ[a % la]} {F}"
        elif p == 7:
            s = f"{_VERB[c % lv]} {_OBJ[d % lo]} {_ADV[a % lad]}"
        elif p == 8:
            s = _FIRST[a % lf]
        elif p == 9:
            s = F if F == F2 else f"{F} {F2}"
        elif p == 10:
            s = f"{_NOUN[b % ln]} in the {_NOUN[c % ln]}"
        elif p == 11:
            s = _VERB[c % lv]
        else:
            s = f"{F} ({_ADJ[a % la]} {_NOUN[d % ln]})"
        g, r = genre_list[i], suffix_u[i]
        if g in feat_set and r < 0.14:
            if i in feat_names:
                s = f"{s} (feat. {feat_names[i]})"
        elif g in remaster and r < 0.12:
            s = f"{s} - Remastered"
        elif r < 0.02:
            s = f"{s} - Live"
        elif r < 0.035:
            s = f"{s} - Acoustic"
        out.append(s)
    return out


def album_names_for(rng: np.random.Generator, album_genre: np.ndarray, album_size: np.ndarray,
                 first_track_name: list[str], album_artist_name: list[str], nth_album: np.ndarray) -> list[str]:
    n = len(album_genre)
    flav_words, flav_off = flavour_table()
    flen = np.diff(flav_off)
    f1 = (flav_off[album_genre] + (rng.random(n) * flen[album_genre]).astype(np.int64)).tolist()
    u = rng.random(n).tolist()
    idx = rng.integers(0, 1 << 30, size=(n, 2)).tolist()
    christmas, classical = GENRES.index("christmas"), GENRES.index("classical")
    sizes, genres, nth = album_size.tolist(), album_genre.tolist(), nth_album.tolist()
    out = []
    for i in range(n):
        r, (a, b), F = u[i], idx[i], flav_words[f1[i]]
        if sizes[i] == 1 or (sizes[i] <= 6 and r < 0.3):
            s = first_track_name[i]  # singles and many EPs are named after their lead song
        elif genres[i] == christmas and r < 0.5:
            if r < 0.3:
                s = f"A {_ADJ[a % len(_ADJ)]} Christmas"
            else:
                s = "Christmas Songs" if r < 0.35 else f"{F} & {_NOUN[b % len(_NOUN)]}"
        elif genres[i] == classical and r < 0.7:
            s = f"{_WORKS[a % len(_WORKS)]} in {_KEYS[b % len(_KEYS)]}"
        elif r < 0.4:
            s = f"{_ADJ[a % len(_ADJ)]} {_NOUN[b % len(_NOUN)]}"
        elif r < 0.5:
            s = album_artist_name[i] if nth[i] == 0 else f"{album_artist_name[i]} II"
        elif r < 0.65:
            s = f"{F} {_NOUN[b % len(_NOUN)]}"
        elif r < 0.75:
            s = f"{_NOUN[a % len(_NOUN)]}, Vol. {1 + b % 4}"
        elif r < 0.88:
            s = _NOUN[a % len(_NOUN)]
        else:
            s = f"{_NOUN[a % len(_NOUN)]} of the {_NOUN[b % len(_NOUN)]}"
        out.append(s)
    return out


def playlist_titles(rng: np.random.Generator, g1: np.ndarray) -> list[str]:
    n = len(g1)
    genre_titles = [split_words(row[2]) for row in GENRE_TABLE]
    genre_emoji = [split_words(row[3]) for row in GENRE_TABLE]
    u = rng.random((n, 4)).tolist()
    zipf = rng.zipf(1.6, size=(n, 2)).tolist()
    out = []
    for i, g in enumerate(g1.tolist()):
        r_kind, r_case, r_emoji, r_space = u[i]
        if r_kind < 0.74:
            titles = genre_titles[g]
            title = titles[(zipf[i][0] - 1) % len(titles)]
            emoji = genre_emoji[g]
        else:
            title = GENERIC_TITLES[(zipf[i][1] * 7 + i) % len(GENERIC_TITLES)]
            emoji = _GENERIC_EMOJI
        r_extra = (r_case * 7919) % 1.0
        if r_extra < 0.14:
            title = f"{title} {_TITLE_SUFFIX[int(r_extra * 1e4) % len(_TITLE_SUFFIX)]}"
        elif r_extra < 0.19:
            title = f"{_TITLE_PREFIX[int(r_extra * 1e4) % len(_TITLE_PREFIX)]} {title}"
        elif r_extra < 0.21:
            title = f"{_FIRST[int(r_extra * 1e5) % len(_FIRST)]}'s {title}"
        if r_case < 0.12:
            title = title.lower()
        elif r_case < 0.14:
            title = title.upper()
        if r_emoji < 0.07:
            title = f"{title} {emoji[int(r_emoji * 1000) % len(emoji)]}"
        if r_space < 0.015:
            title = title + " "
        elif r_space < 0.02:
            title = " " + title
        out.append(title)
    return out

