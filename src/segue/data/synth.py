"""A synthetic playlist generator that writes the exact Million Playlist Dataset (MPD) slice format.

segue's built-in default data. The real MPD cannot be shipped, so this module makes playlists that look and
behave like it, with structure a recommender can learn and a person can recognise:

* **Genres.** :data:`GENRES` lists 22 scenes (country, rap, christmas, workout, rock, worship, chill, ...).
  Every artist belongs to one genre (about 6% also to a second one: cross-genre artists), and so do its albums
  and tracks. Each genre has typical playlist titles ("country", "Country Roads", "christmas 🎄", "gym"),
  flavour words for song and album names, an artist-naming style and a typical song length. About a quarter
  of titles are generic ("my playlist", "summer 2017", "jams", "feels", "lit").
* **Catalogue.** Built once, up front, as numpy arrays (:class:`SyntheticCatalog`): artists with 1..n albums,
  albums that are singles (named after their song), EPs or full albums, tracks stored contiguously by artist,
  then album, then album track order. Names are made-up word-list combinations (no real artists).
* **Popularity.** Zipf-like: within a genre, an artist's weight is ``rank^-0.95`` times log-normal noise; an
  artist's albums split its weight log-normally; an album's tracks split the album's weight as
  ``(track_number)^-0.6`` times noise (openers and singles are the hits).
* **Playlists.** Length from a log-normal/uniform mixture truncated to 5..250 (median ~49, mean ~66). Each
  playlist has a main genre (by genre popularity) and a second, usually neighbouring, genre; each segment of
  the playlist draws a seed track from the main genre (~78%), the second genre, or the global hits.
* **Runs and order.** A playlist is a series of segments (mean length ~2, some "album listener" playlists
  much longer). A segment either plays on through the seed's album in album order (so a track tends to be
  followed by the next track of its album: a sequential signal) or picks more songs by the same artist.
  Duplicates are redrawn once, so a track only occasionally repeats; every playlist has at least 3 artists
  and 2 albums (the MPD selection rule).

Determinism: the catalogue depends only on ``(seed, catalogue size)``; playlist ``pid`` depends only on
``(seed, catalogue size, pid // 1000)``, so the same pid comes out the same however the work is chunked.
The default catalogue size grows like the real MPD (2.26 distinct tracks per playlist) between 5,000 and
1,000,000 tracks (:func:`default_tracks`); pass ``tracks_approx`` to fix it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import orjson

from segue.errors import InputError
from segue.io import atomic_path
from segue.progress import progress_task

logger = logging.getLogger(__name__)

SLICE_SIZE = 1000
MIN_TRACKS = 1000
MAX_DEFAULT_TRACKS = 1_000_000
MIN_DEFAULT_TRACKS = 5000
TRACKS_PER_PLAYLIST = 2.26  # real MPD: 2,262,292 unique tracks for 1,000,000 playlists
MIN_LENGTH, MAX_LENGTH = 5, 250
GENERATED_ON = "2018-01-01 00:00:00.000000"
_DAY = 86400
_FIRST_DAY = 1262304000 // _DAY  # 2010-01-01
_LAST_DAY = 1509408000 // _DAY  # 2017-10-31
_SLICE_NAME = re.compile(r"^mpd\.slice\.(\d+)-(\d+)\.json$")
_ALPHABET = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)


def _w(text: str) -> list[str]:
    return text.split("|")


# name, playlist share, titles (most common first), emoji, flavour words, artist style, median song seconds,
# neighbouring genres (a playlist's second genre is usually one of these)
_GENRE_TABLE = [
    ("country", 8.0, "country|Country|Country Roads|country music|Country 🤠|country jams|Country Vibes|backroads|"
     "Country Summer|truck songs|new country|country 💙|Country Hits|dirt road",
     "🤠|🍻|💙", "Whiskey|Truck|Dirt Road|Tailgate|Small Town|Cowboy|Back Porch|Creek|Tennessee|Georgia|Honky Tonk|"
     "Boots|Hometown|County Line|Moonshine|Heartland|Bonfire|Barn", "person", 200, ("oldies", "rock", "chill", "worship")),
    ("rap", 9.0, "rap|Rap|hip hop|Hip Hop|rap 🔥|trap|Rap Mix|hip hop/rap|bars|rap caviar|Trap Nation|hiphop|Rap 💯",
     "🔥|💯|💰", "Money|Drip|Hustle|Trap|Gang|Bands|Ice|Plug|Flex|Paper|Block|Hood|Savage|Racks|Wave|Sauce|Goat",
     "rap", 200, ("r&b", "party", "workout", "throwback")),
    ("christmas", 4.0, "christmas|Christmas|Christmas 🎄|Christmas Music|xmas|holiday|Christmas Songs|🎄🎄🎄|"
     "christmas playlist|Holiday Music|X-mas|Christmas Jams",
     "🎄|🎅|❄️", "Snow|Mistletoe|Holly|Jingle|Sleigh|Silent Night|December|Reindeer|Winter|Bells|Chimney|Eggnog|"
     "Wonderland|Carol|Yuletide|Angels", "person", 190, ("oldies", "worship", "disney", "jazz")),
    ("workout", 6.0, "workout|Workout|gym|Gym|Workout Mix|running|gym 💪|lifting|cardio|Run|pump up|Gym Music|beast mode",
     "💪|🏋️|🏃", "Power|Burn|Run|Lift|Sweat|Beast|Grind|Pump|Rush|Unstoppable|Adrenaline|Fight|Limit|Stronger",
     "dj", 205, ("edm", "rap", "rock", "party")),
    ("rock", 6.0, "rock|Rock|classic rock|Classic Rock|Rock n Roll|rock 🤘|alternative|Alternative|rock music|"
     "Rock Classics|hard rock|90s rock",
     "🤘|🎸", "Thunder|Highway|Stone|Fire|Electric|Wild|Rebel|Midnight|Gasoline|Rust|Jukebox|Guitar|Radio|Wheels",
     "band", 240, ("metal", "oldies", "indie", "punk")),
    ("worship", 4.0, "worship|Worship|church|Jesus|praise|Gospel|Christian|worship 🙏|Praise & Worship|God|"
     "Sunday|Christian Music",
     "🙏|✝️|🕊️", "Grace|Glory|Mercy|Faith|Hallelujah|Savior|Heaven|Spirit|Cross|Alive|Holy|Redeemer|Kingdom|Light",
     "worship", 250, ("christmas", "chill", "country")),
    ("chill", 7.0, "chill|Chill|chill vibes|relax|chill 🌙|chillin|mellow|Sleep|chill out|Chill Vibes|lazy sunday|"
     "rainy day|calm",
     "🌙|🌊|☁️", "Ocean|Drift|Haze|Moon|Breeze|Slow|Clouds|Waves|Sunset|Velvet|Daydream|Lull|Golden Hour|Mist",
     "band", 220, ("indie", "r&b", "acoustic", "jazz")),
    ("party", 5.0, "party|Party|party mix|pregame|turn up|party 🎉|Party Playlist|Turn Up|dance|Dance|"
     "Party Music|bangers",
     "🎉|🍾|💃", "Tonight|Dance|Shots|Club|Party|Neon|Floor|Weekend|Crazy|Loud|Bounce|DJ|Wild Night|Celebrate",
     "dj", 205, ("rap", "edm", "pop", "latin")),
    ("oldies", 4.0, "oldies|Oldies|60s|70s|Classics|golden oldies|Motown|oldies but goodies|50s|oldies 📻|Old School",
     "📻|🎶", "Baby|Darling|Sugar|Heartbreak|Jukebox|Twist|Doo Wop|Sweetheart|Moonlight|Soul|Cadillac|Soda Pop",
     "band", 170, ("rock", "throwback", "jazz", "christmas")),
    ("throwback", 5.0, "throwback|throwbacks|Throwback|Throwbacks|2000s|90s|00s|throwback jams|nostalgia|90s 💿|"
     "Throwback Thursday|middle school|2000s hits",
     "💿|📼|⏪", "Remember|Back Then|Flip Phone|Mixtape|Summer Nights|Yesterday|Old Times|Rewind|Sidekick|Dial Up",
     "band", 220, ("pop", "r&b", "rap", "oldies")),
    ("disney", 3.0, "disney|Disney|disney songs|Disney 🏰|Musicals|broadway|Disney Channel|Disney Jams|"
     "Broadway|show tunes",
     "🏰|✨|🐭", "Dream|Wish|Magic|Kingdom|Princess|Ocean|Adventure|Castle|Star|Fairy Tale|Once Upon|Wonder|Hero",
     "cast", 190, ("pop", "christmas", "throwback")),
    ("edm", 4.0, "edm|EDM|house|dubstep|electronic|Festival|rave|EDM 🔊|House Music|Electro|deep house|trance",
     "🔊|⚡|🎧", "Pulse|Drop|Laser|Bass|Neon|Voltage|Echo|Circuit|Frequency|Hypnotic|Strobe|Vortex|Orbit|Prism",
     "dj", 215, ("workout", "party", "pop", "chill")),
    ("r&b", 5.0, "r&b|R&B|rnb|RnB|slow jams|Soul|r&b 💕|R&B Vibes|late night|bedroom|Soulful|baby making",
     "💕|🌹|🥀", "Love|Body|Tonight|Slow|Touch|Secret|Silk|Honey|Pillow|Desire|Feelings|Kiss|Vibe|Lately",
     "person", 220, ("rap", "chill", "throwback", "party")),
    ("latin", 3.0, "latin|Latin|reggaeton|Reggaeton|español|bachata|salsa|Latino|musica|Latin 💃|Latin Hits|cumbia",
     "💃|🔥|🌶️", "Corazón|Fuego|Noche|Bailar|Amor|Besos|Cielo|Luna|Mami|Ritmo|Loca|Playa|Vida|Sol",
     "latin", 210, ("party", "pop", "r&b")),
    ("indie", 4.0, "indie|Indie|indie folk|alt|Indie Vibes|coffee shop|Indie Rock|folk|indie 🌿|Alternative Indie|"
     "hipster|Indie Mix",
     "🌿|☕|🍂", "Paper|Coast|Forest|Lantern|Attic|Polaroid|Maps|Fox|Satellite|Harbor|Sweater|Meadow|Postcards",
     "band", 230, ("chill", "rock", "acoustic", "emo")),
    ("jazz", 2.0, "jazz|Jazz|smooth jazz|Jazz & Blues|blues|Blues|jazz 🎷|coffee jazz|Jazz Classics|swing",
     "🎷|🎺", "Blue|Smoke|Midnight|Bourbon|Swing|Velvet|Cafe|Saxophone|Lounge|Avenue|Cool|Bebop|Harlem|Autumn",
     "ensemble", 300, ("oldies", "chill", "classical")),
    ("classical", 2.0, "classical|Classical|piano|Piano|study|Study|focus|instrumental|Classical Music|studying|"
     "homework|Instrumental",
     "🎹|📚|🎻", "Sonata|Nocturne|Prelude|Etude|Adagio|Concerto|Waltz|Requiem|Symphony|Fugue|Overture|Serenade",
     "classical", 330, ("jazz", "chill", "disney")),
    ("pop", 7.0, "pop|Pop|top hits|Pop Hits|pop 💖|Today's Hits|radio|Top 40|hits|Pop Music|pop jams|Radio Hits",
     "💖|✨|🎤", "Heart|Summer|Crush|Starlight|Forever|Dance|Kiss|Diamonds|Party|Love|Rebel|Glitter|Sugar|Stars",
     "person", 205, ("throwback", "party", "disney", "r&b")),
    ("emo", 2.0, "emo|Emo|pop punk|Pop Punk|punk|emo kid|scene|emo 🖤|warped tour|Emo Nite|screamo",
     "🖤|💔", "Cemetery|Sleepless|Broken|Riot|Hospital|Mirror|Ghosts|Knives|Static|Bleach|Funeral|Suburbs|Teenage",
     "band", 195, ("rock", "indie", "metal")),
    ("metal", 2.0, "metal|Metal|heavy metal|metalcore|Metal 🤘|Heavy|thrash|Metalcore|death metal|hardcore",
     "🤘|💀", "Iron|Blood|Skull|Inferno|Chaos|Wolves|Steel|Abyss|Venom|Serpent|Doom|Throne|Ashes|Reaper",
     "band", 270, ("rock", "emo", "workout")),
    ("reggae", 1.5, "reggae|Reggae|island vibes|beach|Beach|Island|reggae 🌴|Beach Vibes|roots|Beach Days",
     "🌴|🏝️|☀️", "Island|Sunshine|Irie|Roots|Jammin|Tide|Coconut|Harbor|Breeze|Zion|Palm|Rasta|Sandy",
     "band", 225, ("chill", "latin", "party")),
    ("acoustic", 3.0, "love songs|Love Songs|acoustic|Acoustic|wedding|love|sad|Sad|feels|sad songs|❤️|"
     "wedding songs|Cry",
     "❤️|💔|🥀", "Love|Forever|Heartbeat|Wedding|Tears|Rain|Home|Promise|Little Things|Goodbye|Darling|Stay",
     "person", 225, ("chill", "indie", "country", "pop")),
]

GENRES: list[str] = [row[0] for row in _GENRE_TABLE]
_G = len(GENRES)

GENERIC_TITLES = _w(
    "my playlist|My Playlist|summer|Summer|summer 2017|Summer 2016|new|New Playlist|jams|Jams|feels|lit|Lit|vibes|"
    "Vibes|good vibes|music|Music|random|mix|road trip|Road Trip|favorites|Favorites|2017|2016|songs|car|car songs|"
    "my songs|playlist|✨|💯|🔥🔥|summer 🌴|fall|Fall|spring|spring 2016|bops|bangers|shower|driving|Drive|songs i like|"
    "ok|stuff|Liked|mood|Mood|🙌|sun|beach|daily mix|favs|my jams|june|july|August|2015|work|Work|late nights"
)
_GENERIC_EMOJI = _w("🔥|✨|💯|🎶|😎|🙌|💫|🌞")
_TITLE_SUFFIX = _w("mix|2017|2016|playlist|songs|jams|music|vibes|hits|favorites|!!|2.0|pt. 2|2k17|forever|only")
_TITLE_PREFIX = _w("my|new|best|summer|old|good|more|all the")

_ADJ = _w(
    "Golden|Broken|Wild|Lonely|Electric|Silver|Little|Crazy|Young|Sweet|Dark|Bright|Lost|Endless|Hidden|Perfect|"
    "Shallow|Heavy|Empty|Burning|Quiet|Secret|Fading|Blue|Red|Green|Purple|Cold|Warm|Restless|Fearless|Beautiful|"
    "Dangerous|Holy|Strange|Simple|Better|Last|First|Lucky|Neon|Velvet|Paper|Crystal|Summer|Midnight|Northern|"
    "Southern|Gentle|Savage|Honest|Hollow|Sacred|Painted|Faded|Higher|Brave|Tender|Bitter|Rolling"
)
_NOUN = _w(
    "Heart|Fire|Rain|River|Road|Night|Light|Dream|Star|Love|Ghost|Ocean|Mountain|City|Home|Sky|Shadow|Storm|Song|"
    "Summer|Winter|Angel|Diamond|Thunder|Window|Mirror|Garden|Highway|Horizon|Echo|Memory|Promise|Kingdom|Wolf|"
    "Moon|Sun|Flame|Wave|Stone|Heaven|Bridge|Train|Letter|Game|Party|Feeling|Fever|Rhythm|Signal|Paradise|Daylight|"
    "Stranger|Lover|Hero|Soldier|Rebel|Sinner|Runaway|Weekend|Morning|Island|Tide|Canyon|Valley|Lantern|Compass|"
    "Satellite|Harbor|Rose|Bullet|Crown|Circle|Secret|Wonder|Gravity|Silence|Thunderbird|Velvet|Chrome|Sugar"
)
_VERB = _w(
    "Hold|Take|Save|Call|Tell|Love|Leave|Kiss|Show|Need|Find|Want|Chase|Wake|Miss|Trust|Catch|Shake|Move|Lift|"
    "Carry|Forget|Remember|Follow|Break|Hurt|Touch|Free|Let|Keep"
)
_OBJ = _w("Me|You|It|Us|Her|Him|Them|Me Now|You Down|It Up")
_ADV = _w("Close|Tonight|Down|Now|Again|Forever|Home|Away|Slow|Back|Right|Loose|Tight|Under|On")
_FIRST = _w(
    "Jake|Emma|Luke|Mason|Ava|Cole|Riley|Dylan|Harper|Tyler|Jordan|Maddie|Carter|Brooke|Hunter|Lily|Austin|Chloe|"
    "Wyatt|Sadie|Bailey|Chase|Kelsey|Brandon|Jenna|Miles|Nora|Grant|Hailey|Caleb|Tessa|Logan|Avery|Blake|Megan|"
    "Derek|Paige|Travis|Sienna|Elliot|Rosa|Marcus|Lena|Owen|Ivy|Jesse|Camila|Reed|Skylar|Dean|Willa|Quinn|Felix|"
    "June|Silas|Maya|Nico|Ruby|Ezra|Hazel"
)
_LAST = _w(
    "Carter|Hayes|Brooks|Wells|Parker|Reed|Bennett|Sawyer|Collins|Hart|Foster|Lane|Morgan|Grady|Walker|Dalton|"
    "Bishop|Shaw|Holloway|Pryce|Monroe|Keller|Vance|Ellison|Harlow|Mercer|Quinn|Ramsey|Sloane|Whitfield|Lowell|"
    "Barrett|Crane|Fischer|Garrett|Hollis|Jensen|Kingsley|Lockhart|Maddox|Nash|Oakley|Pearce|Rhodes|Sutton|Tate|"
    "Underwood|Voss|Winslow|Yates|Ashford|Calloway|Draper|Fairchild|Greer"
)
_PLURAL = _w(
    "Wolves|Lions|Kids|Saints|Ghosts|Strangers|Arrows|Pilots|Shadows|Lovers|Rivers|Giants|Wildflowers|Kings|"
    "Sparrows|Dreamers|Outlaws|Foxes|Tigers|Echoes|Satellites|Canyons|Lanterns|Hounds|Drifters|Comets|Bandits"
)
_RAP_WORDS = _w(
    "Ghost|Smoke|Prince|Hustle|Savage|Drip|Kash|Nova|Blaze|Vibe|Boss|Flex|Chief|Ace|Gucci|Pablo|Tank|Rico|Slim|"
    "Zay|Dre|Jay|Tee|Mookie|Tre|Quez|Nino|Skeez|Milli|Benji"
)
_ES_FIRST = _w("Carlos|Lucía|Mateo|Valentina|Diego|Camila|Javier|Sofía|Alejandro|Daniela|Luis|Mariana|Andrés|Isabela")
_ES_LAST = _w("Rivera|Morales|Castillo|Vega|Herrera|Ortiz|Navarro|Ramos|Delgado|Fuentes|Reyes|Mendoza|Santos|Cruz")
_ES_WORDS = _w("Fuego|Ritmo|Calle|Sol|Luna|Noche|Cielo|Oro|Tormenta|Corazón|Sabor|Tropical")
_PLACES = _w("Hillside|Bethel Creek|Riverstone|New Harbor|Cornerstone|Oakwood|Redeemer|Highland|Summit|Living Water")
_COMPOSERS = _w(
    "Albrecht|Beaumont|Castellano|Dvorin|Ehrlich|Fauré-Lind|Grieving|Halvorsen|Ivanova|Janáček-Bell|Kessler|"
    "Lindqvist|Marchetti|Novak|Orlov|Petrenko|Rautavaara|Sorensen|Tavernier|Valtonen"
)
_WORKS = _w("Sonatas|Nocturnes|Symphony No. 3|Piano Works|Preludes|String Quartets")
_KEYS = _w("C Major|D Minor|E-Flat Major|G Minor|A Major|B-Flat Minor|F Major|C-Sharp Minor")

# playlist title -> description templates (about 2% of playlists have a description, as in the MPD)
_DESCRIPTIONS = _w(
    "my favorite {g} songs|the best {g} songs|{g} vibes only|for when you need some {g}|a little {g} and a little "
    "{g2}|updated every week|songs for the drive|enjoy!|what i'm listening to right now|all the {g} you need"
)


def _genre_neighbours() -> np.ndarray:
    index = {name: i for i, name in enumerate(GENRES)}
    aliases = {"punk": "emo"}
    width = max(len(row[7]) for row in _GENRE_TABLE)
    table = np.full((_G, width), -1, dtype=np.int64)
    for g, row in enumerate(_GENRE_TABLE):
        ns = [index[aliases.get(n, n)] for n in row[7]]
        table[g, : len(ns)] = ns
        table[g, len(ns) :] = ns[0]
    return table


def default_tracks(n_playlists: int) -> int:
    """The default catalogue size: 2.26 tracks per playlist like the real MPD, within [5,000, 1,000,000]."""
    return int(min(MAX_DEFAULT_TRACKS, max(MIN_DEFAULT_TRACKS, round(TRACKS_PER_PLAYLIST * n_playlists))))


def _uris(rng: np.random.Generator, kind: str, n: int) -> list[str]:
    codes = _ALPHABET[rng.integers(0, 62, size=(n, 22), dtype=np.uint8)]
    ids = codes.view("S22").ravel().astype("U22").tolist()
    prefix = f"spotify:{kind}:"
    return [prefix + s for s in ids]


def _cdf(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights, dtype=np.float64)
    return cdf / cdf[-1]


@dataclass
class SyntheticCatalog:
    """The synthetic catalogue: tracks contiguous by artist, then album, then album track order.

    Arrays are per track unless named otherwise. ``track_genre`` is the artist's primary genre (an index into
    :data:`GENRES`); it exists for tests and diagnostics only, the product never relies on it.
    """

    seed: int
    track_artist: np.ndarray  # int32
    track_album: np.ndarray  # int32
    track_genre: np.ndarray  # int16
    track_number: np.ndarray  # int16, 0-based position in its album
    track_duration: np.ndarray  # int64 ms
    track_weight: np.ndarray  # float64 popularity (sums to 1 within each genre)
    artist_genre: np.ndarray  # int16
    artist_genre2: np.ndarray  # int16, -1 when the artist belongs to one genre only
    artist_start: np.ndarray  # int64, first track of each artist (length n_artists + 1)
    album_artist: np.ndarray  # int32
    album_start: np.ndarray  # int64, first track of each album (length n_albums + 1)
    track_uris: list[str]
    track_names: list[str]
    artist_uris: list[str]
    artist_names: list[str]
    album_uris: list[str]
    album_names: list[str]

    @property
    def n_tracks(self) -> int:
        return len(self.track_artist)

    @property
    def n_artists(self) -> int:
        return len(self.artist_genre)

    @property
    def n_albums(self) -> int:
        return len(self.album_artist)

    @classmethod
    def build(cls, n_tracks: int, seed: int = 0) -> SyntheticCatalog:
        """Build a catalogue of exactly ``n_tracks`` tracks, deterministic in ``(n_tracks, seed)``."""
        if n_tracks < MIN_TRACKS:
            raise InputError(
                f"A synthetic catalogue needs at least {MIN_TRACKS:,} tracks (got {n_tracks:,}); "
                f"pass --tracks-approx {MIN_TRACKS} or more."
            )
        return _build_catalog(int(n_tracks), int(seed))

    # ---- per-genre sampling pools -------------------------------------------------------------------------
    @cached_property
    def _pools(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per genre: (track ids, cdf) including cross-genre artists' tracks at half weight."""
        second = self.artist_genre2[self.track_artist]
        pools = []
        for g in range(_G):
            own = np.flatnonzero(self.track_genre == g)
            cross = np.flatnonzero(second == g)
            ids = np.concatenate([own, cross]).astype(np.int64)
            w = np.concatenate([self.track_weight[own], 0.5 * self.track_weight[cross]])
            pools.append((ids, _cdf(w)))
        return pools

    @cached_property
    def _hits(self) -> np.ndarray:
        """cdf over all tracks for "popular crossover" picks: genre share x weight, sharpened."""
        share = _playlist_share()[self.track_genre]
        return _cdf((share * self.track_weight) ** 1.2)

    @cached_property
    def _weight_cumsum(self) -> np.ndarray:
        return np.cumsum(self.track_weight, dtype=np.float64)

    def sample_genre(self, rng: np.random.Generator, genre: int, n: int) -> np.ndarray:
        ids, cdf = self._pools[genre]
        return ids[np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(ids) - 1)]

    def sample_hits(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.minimum(np.searchsorted(self._hits, rng.random(n), side="right"), self.n_tracks - 1)

    def sample_by_artist(self, rng: np.random.Generator, artists: np.ndarray) -> np.ndarray:
        """One popularity-weighted track of each given artist (an artist's tracks are contiguous)."""
        start = self.artist_start[artists]
        end = self.artist_start[artists + 1]
        csum = self._weight_cumsum
        lo = np.where(start > 0, csum[np.maximum(start - 1, 0)], 0.0)
        hi = csum[end - 1]
        picks = np.searchsorted(csum, lo + rng.random(len(artists)) * (hi - lo), side="right")
        return np.clip(picks, start, end - 1)

    def genre_names(self, track_ids) -> list[str]:
        return [GENRES[g] for g in self.track_genre[np.asarray(track_ids)].tolist()]

    @cached_property
    def _uri_index(self) -> dict[str, int]:
        return {uri: i for i, uri in enumerate(self.track_uris)}

    def track_ids(self, uris) -> np.ndarray:
        """Catalogue rows of track URIs (-1 for unknown)."""
        index = self._uri_index
        return np.fromiter((index.get(u, -1) for u in uris), dtype=np.int64)

    def genres_of_uris(self, uris) -> np.ndarray:
        """Genre index of each track URI (-1 for URIs not in this catalogue)."""
        ids = self.track_ids(uris)
        out = np.full(len(ids), -1, dtype=np.int16)
        out[ids >= 0] = self.track_genre[ids[ids >= 0]]
        return out


def _playlist_share() -> np.ndarray:
    share = np.array([row[1] for row in _GENRE_TABLE], dtype=np.float64)
    return share / share.sum()


def _artist_names(rng: np.random.Generator, genres: np.ndarray) -> list[str]:
    styles = [_GENRE_TABLE[g][5] for g in range(_G)]
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


def _flavour_table() -> tuple[list[str], np.ndarray]:
    words, offsets = [], [0]
    for row in _GENRE_TABLE:
        words.extend(_w(row[4]))
        offsets.append(len(words))
    return words, np.asarray(offsets, dtype=np.int64)


def _track_names(rng: np.random.Generator, genres: np.ndarray, artists: np.ndarray, artist_names: list[str],
                 genre_artists: list[np.ndarray]) -> list[str]:
    n = len(genres)
    flav_words, flav_off = _flavour_table()
    flen = np.diff(flav_off)
    f1 = (flav_off[genres] + (rng.random(n) * flen[genres]).astype(np.int64)).tolist()
    f2 = (flav_off[genres] + (rng.random(n) * flen[genres]).astype(np.int64)).tolist()
    pattern = np.searchsorted(
        np.cumsum([0.14, 0.09, 0.09, 0.06, 0.05, 0.15, 0.09, 0.07, 0.04, 0.1, 0.04, 0.04, 0.04]), rng.random(n)
    ).tolist()
    idx = rng.integers(0, 1 << 30, size=(n, 4)).tolist()
    genre_list = genres.tolist()
    suffix_u = rng.random(n).tolist()
    feat_pick = rng.integers(0, 1 << 30, size=n).tolist()
    feat_genres = {GENRES.index(g) for g in ("rap", "r&b", "edm", "pop", "latin", "party", "workout")}
    remaster = {GENRES.index(g) for g in ("oldies", "rock", "jazz", "throwback")}
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
        if g in feat_genres and r < 0.14:
            pool = genre_artists[g]
            other = int(pool[feat_pick[i] % len(pool)])
            if other != artists[i]:
                s = f"{s} (feat. {artist_names[other]})"
        elif g in remaster and r < 0.12:
            s = f"{s} - Remastered"
        elif r < 0.02:
            s = f"{s} - Live"
        elif r < 0.035:
            s = f"{s} - Acoustic"
        out.append(s)
    return out


def _album_names(rng: np.random.Generator, album_genre: np.ndarray, album_size: np.ndarray,
                 first_track_name: list[str], album_artist_name: list[str], nth_album: np.ndarray) -> list[str]:
    n = len(album_genre)
    flav_words, flav_off = _flavour_table()
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


def _build_catalog(n_tracks: int, seed: int) -> SyntheticCatalog:
    t0 = time.perf_counter()
    rng = np.random.default_rng([seed, 0xCA7A])
    share = _playlist_share()
    catalogue_share = np.sqrt(share) / np.sqrt(share).sum()  # niche genres get relatively more catalogue

    # artists -> albums -> tracks; albums: ~45% singles, ~20% EPs (3-6), ~35% full albums (8-16)
    mean_album = 0.45 * 1 + 0.2 * 4.5 + 0.35 * 12
    n_artists = int(n_tracks / (2.5 * mean_album) * 1.3) + 50
    while True:
        albums_per_artist = rng.geometric(0.4, size=n_artists)
        n_albums_total = int(albums_per_artist.sum())
        kind = rng.random(n_albums_total)
        sizes = np.where(kind < 0.45, 1, np.where(kind < 0.65, rng.integers(3, 7, n_albums_total),
                                                  rng.integers(8, 17, n_albums_total)))
        if sizes.sum() >= n_tracks:
            break
        n_artists *= 2
    album_end = np.cumsum(sizes)
    n_albums = int(np.searchsorted(album_end, n_tracks) + 1)
    sizes = sizes[:n_albums].copy()
    sizes[-1] -= int(album_end[n_albums - 1] - n_tracks)
    album_artist_full = np.repeat(np.arange(n_artists, dtype=np.int32), albums_per_artist)
    album_artist = album_artist_full[:n_albums]
    n_artists = int(album_artist[-1]) + 1

    # every genre gets artists; the rest by catalogue share, shuffled so genres interleave
    per_genre_min = max(3, min(20, n_artists // (4 * _G)))
    artist_genre = np.concatenate([
        np.repeat(np.arange(_G), per_genre_min),
        rng.choice(_G, size=max(0, n_artists - per_genre_min * _G), p=catalogue_share),
    ])[:n_artists]
    artist_genre = rng.permutation(artist_genre).astype(np.int16)
    neighbours = _genre_neighbours()
    cross = rng.random(n_artists) < 0.06
    nb = neighbours[artist_genre, rng.integers(0, neighbours.shape[1], n_artists)]
    artist_genre2 = np.where(cross, nb, -1).astype(np.int16)

    # popularity: Zipf over a random rank within the genre, times noise
    rank = np.empty(n_artists, dtype=np.int64)
    order = np.lexsort((rng.random(n_artists), artist_genre))
    genre_first = np.searchsorted(artist_genre[order], np.arange(_G))
    rank[order] = np.arange(n_artists) - genre_first[artist_genre[order]]
    artist_w = (rank + 1.0) ** -0.85 * rng.lognormal(0.0, 0.8, n_artists)

    album_start = np.zeros(n_albums + 1, dtype=np.int64)
    np.cumsum(sizes, out=album_start[1:])
    track_album = np.repeat(np.arange(n_albums, dtype=np.int32), sizes)
    track_artist = album_artist[track_album]
    track_number = (np.arange(n_tracks) - album_start[track_album]).astype(np.int16)
    track_genre = artist_genre[track_artist]

    album_w = sizes**0.8 * rng.lognormal(0.0, 1.0, n_albums)  # full albums carry more weight
    album_w /= np.bincount(album_artist, weights=album_w, minlength=n_artists)[album_artist]
    track_w = (track_number + 1.0) ** -0.6 * rng.lognormal(0.0, 1.3, n_tracks)
    track_w /= np.bincount(track_album, weights=track_w, minlength=n_albums)[track_album]
    weight = artist_w[track_artist] * album_w[track_album] * track_w
    weight /= np.bincount(track_genre, weights=weight, minlength=_G)[track_genre]

    artist_start = np.zeros(n_artists + 1, dtype=np.int64)
    np.cumsum(np.bincount(track_artist, minlength=n_artists), out=artist_start[1:])

    medians = np.array([row[6] for row in _GENRE_TABLE], dtype=np.float64) * 1000
    duration = np.clip(medians[track_genre] * rng.lognormal(0.0, 0.22, n_tracks), 45_000, 900_000)
    duration = np.round(duration).astype(np.int64)

    artist_names = _artist_names(rng, artist_genre)
    genre_artists = [np.flatnonzero(artist_genre == g) for g in range(_G)]
    track_names = _track_names(rng, track_genre.astype(np.int64), track_artist, artist_names, genre_artists)
    nth_album = np.arange(n_albums) - np.searchsorted(album_artist, album_artist)
    album_names = _album_names(
        rng, artist_genre[album_artist].astype(np.int64), sizes,
        [track_names[i] for i in album_start[:-1].tolist()],
        [artist_names[a] for a in album_artist.tolist()], nth_album,
    )
    cat = SyntheticCatalog(
        seed=seed,
        track_artist=track_artist.astype(np.int32),
        track_album=track_album,
        track_genre=track_genre,
        track_number=track_number,
        track_duration=duration,
        track_weight=weight,
        artist_genre=artist_genre,
        artist_genre2=artist_genre2,
        artist_start=artist_start,
        album_artist=album_artist,
        album_start=album_start,
        track_uris=_uris(rng, "track", n_tracks),
        track_names=track_names,
        artist_uris=_uris(rng, "artist", n_artists),
        artist_names=artist_names,
        album_uris=_uris(rng, "album", n_albums),
        album_names=album_names,
    )
    logger.info("synthetic catalogue: %d tracks, %d albums, %d artists in %.1fs",
                n_tracks, n_albums, n_artists, time.perf_counter() - t0)
    return cat


_CATALOG_CACHE: dict[tuple[int, int], SyntheticCatalog] = {}


def catalog_for(n_playlists: int, seed: int = 0, tracks_approx: int | None = None,
                start_pid: int = 0) -> SyntheticCatalog:
    """The catalogue :func:`generate_playlists` uses for these arguments (cached: the last one built)."""
    n_tracks = int(tracks_approx) if tracks_approx is not None else default_tracks(start_pid + n_playlists)
    key = (n_tracks, int(seed))
    cat = _CATALOG_CACHE.get(key)
    if cat is None:
        cat = SyntheticCatalog.build(n_tracks, seed)
        _CATALOG_CACHE.clear()
        _CATALOG_CACHE[key] = cat
    return cat


# ---- playlists -------------------------------------------------------------------------------------------

def _sample_lengths(rng: np.random.Generator, n: int) -> np.ndarray:
    """Log-normal (median 46, sigma 0.75) + 8% uniform 80..250, truncated to 5..250: median ~49, mean ~66."""
    out = np.empty(0, dtype=np.int64)
    while len(out) < n:
        m = 2 * (n - len(out)) + 16
        x = np.exp(rng.normal(np.log(46.0), 0.75, m))
        flat = rng.random(m) < 0.08
        x[flat] = rng.uniform(80, 251, int(flat.sum()))
        x = np.floor(x).astype(np.int64)
        out = np.concatenate([out, x[(x >= MIN_LENGTH) & (x <= MAX_LENGTH)]])
    return out[:n]


def _distinct_per_row(row: np.ndarray, key: np.ndarray, n_rows: int, n_keys: int) -> np.ndarray:
    pairs = np.sort(row.astype(np.int64) * n_keys + key)  # sorting beats np.unique's hashing here
    first = np.ones(len(pairs), dtype=bool)
    first[1:] = pairs[1:] != pairs[:-1]
    return np.bincount(pairs[first] // n_keys, minlength=n_rows)


def _block_tracks(cat: SyntheticCatalog, rng: np.random.Generator, g1: np.ndarray, g2: np.ndarray,
                  lengths: np.ndarray) -> np.ndarray:
    """The track ids of a block of playlists, concatenated (vectorised over all entries of the block)."""
    n = len(lengths)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    row = np.repeat(np.arange(n), lengths)

    p_main = rng.beta(7.0, 2.0, n)
    p_hits = np.minimum(rng.uniform(0.0, 0.15, n), 1.0 - p_main)
    q_new = rng.uniform(0.3, 0.9, n)  # chance a position starts a new segment
    q_new[rng.random(n) < 0.06] = 0.1  # "album listeners": long runs

    new = rng.random(total) < q_new[row]
    new[offsets[:-1]] = True
    seg = np.cumsum(new) - 1
    seg_first = np.flatnonzero(new)
    n_seg = len(seg_first)
    k = np.arange(total) - seg_first[seg]
    seg_row = row[seg_first]

    u = rng.random(n_seg)
    source = np.where(u < p_main[seg_row], 0, np.where(u < p_main[seg_row] + p_hits[seg_row], 2, 1))
    seg_genre = np.where(source == 1, g2[seg_row], g1[seg_row])
    seed_track = np.empty(n_seg, dtype=np.int64)
    hits = source == 2
    seed_track[hits] = cat.sample_hits(rng, int(hits.sum()))
    for g in np.unique(seg_genre[~hits]).tolist():
        mask = (seg_genre == g) & ~hits
        seed_track[mask] = cat.sample_genre(rng, g, int(mask.sum()))
    album_run = rng.random(n_seg) < 0.75

    first = seed_track[seg]
    candidate = first + k
    ok = (k == 0) | (album_run[seg] & (candidate < cat.album_start[cat.track_album[first] + 1]))
    tracks = np.where(ok, candidate, 0)
    other = ~ok
    tracks[other] = cat.sample_by_artist(rng, cat.track_artist[first[other]].astype(np.int64))

    # redraw repeats from the main genre, by popularity and then uniformly; a few stay (as in the MPD)
    for attempt in range(4):
        key = row.astype(np.int64) * cat.n_tracks + tracks
        order = np.argsort(key, kind="stable")
        dup = np.zeros(total, dtype=bool)
        dup[order[1:][key[order][1:] == key[order][:-1]]] = True
        if attempt == 0:
            keeps_repeats = rng.random(n) < 0.03  # these playlists keep their first-draw repeats
            dup &= ~keeps_repeats[row]
        if not dup.any():
            break
        _redraw_from_genre(cat, rng, tracks, dup, g1[row], uniform=attempt >= 2)

    # a few playlists add a song a second time (about 2%, as people do)
    again = np.flatnonzero(rng.random(n) < 0.02)
    if len(again):
        j = offsets[again] + 1 + (rng.random(len(again)) * (lengths[again] - 1)).astype(np.int64)
        i = offsets[again] + (rng.random(len(again)) * (j - offsets[again])).astype(np.int64)
        tracks[j] = tracks[i]

    # enforce the MPD selection rules: >= 3 artists and >= 2 albums
    for attempt in range(100):
        artists = cat.track_artist[tracks]
        albums = cat.track_album[tracks]
        bad = (_distinct_per_row(row, artists, n, cat.n_artists) < 3) | (
            _distinct_per_row(row, albums, n, cat.n_albums) < 2)
        if not bad.any():
            return tracks
        redo = bad[row]
        if attempt < 5:
            _redraw_from_genre(cat, rng, tracks, redo, g1[row])
        else:
            tracks[redo] = cat.sample_hits(rng, int(redo.sum()))
    raise RuntimeError("could not draw playlists with 3 artists and 2 albums; the catalogue is too small")


def _redraw_from_genre(cat, rng, tracks: np.ndarray, mask: np.ndarray, genre: np.ndarray,
                       uniform: bool = False) -> None:
    for g in np.unique(genre[mask]).tolist():
        m = mask & (genre == g)
        if uniform:
            ids = cat._pools[g][0]
            tracks[m] = ids[rng.integers(0, len(ids), int(m.sum()))]
        else:
            tracks[m] = cat.sample_genre(rng, g, int(m.sum()))


def _titles(rng: np.random.Generator, g1: np.ndarray) -> list[str]:
    n = len(g1)
    genre_titles = [_w(row[2]) for row in _GENRE_TABLE]
    genre_emoji = [_w(row[3]) for row in _GENRE_TABLE]
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


def _block_playlists(cat: SyntheticCatalog, seed: int, block: int) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Playlists ``block * 1000 .. block * 1000 + 999`` as MPD dicts, with their track ids and offsets."""
    rng = np.random.default_rng([seed, 0xB10C, block])
    n = SLICE_SIZE
    share = _playlist_share()
    lengths = _sample_lengths(rng, n)
    g1 = rng.choice(_G, size=n, p=share)
    neighbours = _genre_neighbours()
    g2 = np.where(rng.random(n) < 0.75, neighbours[g1, rng.integers(0, neighbours.shape[1], n)],
                  rng.choice(_G, size=n, p=share))
    tracks = _block_tracks(cat, rng, g1, g2, lengths)
    row = np.repeat(np.arange(n), lengths)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])

    num_artists = _distinct_per_row(row, cat.track_artist[tracks], n, cat.n_artists).tolist()
    num_albums = _distinct_per_row(row, cat.track_album[tracks], n, cat.n_albums).tolist()
    duration = np.bincount(row, weights=cat.track_duration[tracks], minlength=n).astype(np.int64).tolist()
    titles = _titles(rng, g1)
    collaborative = (rng.random(n) < 0.023).tolist()
    days_back = np.floor(rng.exponential(550.0, n)).astype(np.int64) % (_LAST_DAY - _FIRST_DAY + 1)
    modified = ((_LAST_DAY - days_back) * _DAY).tolist()
    followers = np.minimum(rng.zipf(2.3, n), 100_000).tolist()
    edits = (1 + rng.poisson(lengths * 0.2)).tolist()
    has_desc = (rng.random(n) < 0.019).tolist()
    desc_pick = rng.integers(0, len(_DESCRIPTIONS), n).tolist()
    g1l, g2l = g1.tolist(), g2.tolist()

    tu, tn, du = cat.track_uris, cat.track_names, cat.track_duration
    ar, al = cat.track_artist, cat.track_album
    an, au, bn, bu = cat.artist_names, cat.artist_uris, cat.album_names, cat.album_uris
    t_list = tracks.tolist()
    a_list = ar[tracks].tolist()
    b_list = al[tracks].tolist()
    d_list = du[tracks].tolist()
    lengths_l = lengths.tolist()
    off = offsets.tolist()
    base = block * SLICE_SIZE
    out = []
    for i in range(n):
        lo, hi = off[i], off[i + 1]
        entries = [
            {
                "pos": j,
                "artist_name": an[a],
                "track_uri": tu[t],
                "artist_uri": au[a],
                "track_name": tn[t],
                "album_uri": bu[b],
                "duration_ms": d,
                "album_name": bn[b],
            }
            for j, (t, a, b, d) in enumerate(zip(t_list[lo:hi], a_list[lo:hi], b_list[lo:hi], d_list[lo:hi]))
        ]
        playlist = {
            "name": titles[i],
            "collaborative": "true" if collaborative[i] else "false",
            "pid": base + i,
            "modified_at": modified[i],
            "num_tracks": lengths_l[i],
            "num_albums": num_albums[i],
            "num_artists": num_artists[i],
            "num_followers": followers[i],
            "num_edits": edits[i],
            "duration_ms": duration[i],
        }
        if has_desc[i]:
            playlist["description"] = _DESCRIPTIONS[desc_pick[i]].format(g=GENRES[g1l[i]], g2=GENRES[g2l[i]])
        playlist["tracks"] = entries
        out.append(playlist)
    return out, tracks, offsets


def generate_playlists(n_playlists: int, seed: int = 0, tracks_approx: int | None = None,
                       start_pid: int = 0, catalog: SyntheticCatalog | None = None) -> Iterator[dict]:
    """Yield ``n_playlists`` synthetic MPD playlists with pids ``start_pid ..``, deterministically.

    The catalogue has ``tracks_approx`` tracks, or :func:`default_tracks` of ``start_pid + n_playlists``;
    pass ``catalog`` (from :func:`catalog_for`) to reuse one. A playlist depends only on the seed, the
    catalogue and its pid.
    """
    if n_playlists < 0 or start_pid < 0:
        raise InputError("The number of playlists and the first pid must not be negative.")
    if n_playlists == 0:
        return
    cat = catalog if catalog is not None else catalog_for(n_playlists, seed, tracks_approx, start_pid)
    stop = start_pid + n_playlists
    for block in range(start_pid // SLICE_SIZE, (stop - 1) // SLICE_SIZE + 1):
        base = block * SLICE_SIZE
        playlists = _block_playlists(cat, seed, block)[0]
        yield from playlists[max(0, start_pid - base) : min(SLICE_SIZE, stop - base)]


def slice_name(start: int, end: int) -> str:
    return f"mpd.slice.{start}-{end}.json"


@dataclass
class SynthSummary:
    files: list[Path]
    n_playlists: int
    n_entries: int
    n_distinct_tracks: int
    n_catalog_tracks: int
    seconds: float
    removed: int = 0

    def line(self) -> str:
        return (
            f"wrote {len(self.files):,} files, {self.n_playlists:,} playlists, {self.n_entries:,} playlist tracks "
            f"({self.n_distinct_tracks:,} distinct of a {self.n_catalog_tracks:,}-track catalogue) "
            f"in {self.seconds:.1f}s"
            + (f"; removed {self.removed} stale slice file(s)" if self.removed else "")
        )


def synthesize(out_dir, n_playlists: int, seed: int = 0, tracks_approx: int | None = None,
               progress: bool = False) -> SynthSummary:
    """Write ``n_playlists`` playlists as MPD slices into ``out_dir`` and return a summary.

    One file per 1,000 playlists (``mpd.slice.<a>-<b>.json``; the last may be partial), each written
    atomically. ``mpd.slice.*.json`` files already in ``out_dir`` that this run does not write are removed,
    so the directory holds exactly this data set.
    """
    if n_playlists < 1:
        raise InputError(f"--playlists must be at least 1 (got {n_playlists}).")
    if tracks_approx is not None and tracks_approx < MIN_TRACKS:
        raise InputError(f"--tracks-approx must be at least {MIN_TRACKS:,} (got {tracks_approx:,}).")
    t0 = time.perf_counter()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a directory; choose another --out.")
    out.mkdir(parents=True, exist_ok=True)
    cat = catalog_for(n_playlists, seed, tracks_approx)
    files: list[Path] = []
    seen = np.zeros(cat.n_tracks, dtype=bool)
    n_entries = 0
    n_blocks = (n_playlists + SLICE_SIZE - 1) // SLICE_SIZE
    info_extra = {"description": f"synthetic MPD-format data made by segue synth (seed {seed}); not Spotify data"}
    with progress_task("synth", n_playlists, enabled=progress) as advance:
        for block in range(n_blocks):
            start = block * SLICE_SIZE
            end = min(start + SLICE_SIZE, n_playlists) - 1
            playlists, tracks, offsets = _block_playlists(cat, seed, block)
            playlists = playlists[: end - start + 1]
            tracks = tracks[: offsets[len(playlists)]]
            n_entries += len(tracks)
            seen[tracks] = True
            name = slice_name(start, end)
            doc = {"info": {"generated_on": GENERATED_ON, "slice": f"{start}-{end}", "version": "v1", **info_extra},
                   "playlists": playlists}
            path = out / name
            with atomic_path(path) as tmp:
                tmp.write_bytes(orjson.dumps(doc))
            files.append(path)
            advance(len(playlists))
    written = {p.name for p in files}
    removed = 0
    for stale in out.iterdir():
        if _SLICE_NAME.match(stale.name) and stale.name not in written and stale.is_file():
            stale.unlink()
            removed += 1
    return SynthSummary(files, n_playlists, n_entries, int(seen.sum()), cat.n_tracks,
                        time.perf_counter() - t0, removed)


def write_slices(out_dir, n_playlists: int, seed: int = 0, tracks_approx: int | None = None,
                 progress: bool = False) -> list[Path]:
    """Write synthetic MPD slices into ``out_dir``; returns the slice paths in pid order."""
    return synthesize(out_dir, n_playlists, seed, tracks_approx, progress).files
