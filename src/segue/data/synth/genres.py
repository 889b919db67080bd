"""The 22 genres (scenes) of the synthetic MPD: playlist share, titles, emoji, flavour words, naming style,
song length and neighbouring genres."""

from __future__ import annotations

import numpy as np


def split_words(text: str) -> list[str]:
    return text.split("|")


# name, playlist share, titles (most common first), emoji, flavour words, artist style, median song seconds,
# neighbouring genres (a playlist's second genre is usually one of these)
GENRE_TABLE = [
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

GENRES: list[str] = [row[0] for row in GENRE_TABLE]
N_GENRES = len(GENRES)


def genre_neighbours() -> np.ndarray:
    index = {name: i for i, name in enumerate(GENRES)}
    aliases = {"punk": "emo"}
    width = max(len(row[7]) for row in GENRE_TABLE)
    table = np.full((N_GENRES, width), -1, dtype=np.int64)
    for g, row in enumerate(GENRE_TABLE):
        ns = [index[aliases.get(n, n)] for n in row[7]]
        table[g, : len(ns)] = ns
        table[g, len(ns) :] = ns[0]
    return table


def playlist_share() -> np.ndarray:
    share = np.array([row[1] for row in GENRE_TABLE], dtype=np.float64)
    return share / share.sum()


def flavour_table() -> tuple[list[str], np.ndarray]:
    words, offsets = [], [0]
    for row in GENRE_TABLE:
        words.extend(split_words(row[4]))
        offsets.append(len(words))
    return words, np.asarray(offsets, dtype=np.int64)

