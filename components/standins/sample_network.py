"""The small Melbourne-like network behind the stand-in GTFS feeds.

Plain tables (stations, lines, timetables) for regional train (mode 1), metro
train (mode 2) and tram (mode 3); `sample_feed` turns them into GTFS files.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Station:
    """A stop on the network; `code` becomes `vic:rail:<code>` for rail stations."""

    code: str
    name: str
    lat: float
    lon: float


@dataclass(frozen=True, kw_only=True)
class Headway:
    """Trips every `every` minutes from `first` to `last` (minutes after midnight)."""

    service_id: str
    first: int
    last: int
    every: int
    # Extra departures outside the regular pattern, e.g. a Night Network trip.
    extra: tuple[int, ...] = ()

    def departures(self) -> list[int]:
        return [*range(self.first, self.last + 1, self.every), *self.extra]


@dataclass(frozen=True, kw_only=True)
class Line:
    """A route served in both directions; `stations` run outbound from the city."""

    code: str
    short_name: str
    long_name: str
    color: str
    text_color: str
    stations: tuple[Station, ...]
    # Outbound trips show this; it defaults to the short name ("Frankston").
    headsign: str = ""

    @property
    def outbound_headsign(self) -> str:
        return self.headsign or self.short_name


@dataclass(frozen=True, kw_only=True)
class ModeNetwork:
    """Everything one per-mode feed (one folder of the zip of zips) is built from."""

    mode: str
    route_type: int
    # Average speed in metres per minute, stops included: it sets the running times.
    speed: float
    # Rail stations are parent stations with numbered platforms; tram stops are not.
    rail: bool
    city_headsign: str
    first_stop_id: int
    lines: tuple[Line, ...]
    headways: tuple[Headway, ...]


def _st(code: str, name: str, lat: float, lon: float) -> Station:
    return Station(code=code, name=name, lat=lat, lon=lon)


# --- stations (approximate positions) -------------------------------------------

FSS = _st("FSS", "Flinders Street", -37.81810, 144.96627)
SSS = _st("SSS", "Southern Cross", -37.81765, 144.95179)
RMD = _st("RMD", "Richmond", -37.82416, 144.98954)
SYR = _st("SYR", "South Yarra", -37.83851, 144.99206)
FSY = _st("FSY", "Footscray", -37.80144, 144.90193)
SUN = _st("SUN", "Sunshine", -37.78834, 144.83246)

METRO_LINES = (
    Line(
        code="FKN",
        short_name="Frankston",
        long_name="Frankston - City",
        color="028430",
        text_color="FFFFFF",
        stations=(
            FSS,
            RMD,
            SYR,
            _st("CFD", "Caulfield", -37.87736, 145.04208),
            _st("BEN", "Bentleigh", -37.91741, 145.03692),
            _st("MOO", "Moorabbin", -37.93451, 145.03665),
            _st("CTM", "Cheltenham", -37.96639, 145.05435),
            _st("MEN", "Mentone", -37.98362, 145.06632),
            _st("MOR", "Mordialloc", -38.00633, 145.08735),
            _st("CSA", "Chelsea", -38.05321, 145.11654),
            _st("CAR", "Carrum", -38.07761, 145.12304),
            _st("FKN", "Frankston", -38.14268, 145.12604),
        ),
    ),
    Line(
        code="GWY",
        short_name="Glen Waverley",
        long_name="Glen Waverley - City",
        color="152C6B",
        text_color="FFFFFF",
        stations=(
            FSS,
            RMD,
            _st("BLY", "Burnley", -37.82769, 145.00765),
            _st("HEY", "Heyington", -37.83464, 145.02257),
            _st("KYG", "Kooyong", -37.83997, 145.03354),
            _st("TGA", "Tooronga", -37.84913, 145.04140),
            _st("GIR", "Glen Iris", -37.85924, 145.05811),
            _st("EMV", "East Malvern", -37.87688, 145.06911),
            _st("HOL", "Holmesglen", -37.87462, 145.08996),
            _st("MWY", "Mount Waverley", -37.87530, 145.12777),
            _st("SYN", "Syndal", -37.87630, 145.14964),
            _st("GWY", "Glen Waverley", -37.87974, 145.16289),
        ),
    ),
    Line(
        code="SHM",
        short_name="Sandringham",
        long_name="Sandringham - City",
        color="F178AF",
        text_color="000000",
        stations=(
            FSS,
            RMD,
            SYR,
            _st("PRA", "Prahran", -37.84971, 144.98978),
            _st("WIN", "Windsor", -37.85602, 144.99192),
            _st("BCV", "Balaclava", -37.86936, 144.99360),
            _st("ELS", "Elsternwick", -37.88476, 145.00082),
            _st("NBN", "North Brighton", -37.90470, 145.00260),
            _st("MBN", "Middle Brighton", -37.91475, 144.99666),
            _st("BBH", "Brighton Beach", -37.92635, 144.98921),
            _st("HAM", "Hampton", -37.93819, 145.00149),
            _st("SHM", "Sandringham", -37.95028, 145.00449),
        ),
    ),
)

REGIONAL_LINES = (
    Line(
        code="GEL",
        short_name="Geelong",
        long_name="Geelong - Melbourne Via Tarneit",
        color="8F1A95",
        text_color="FFFFFF",
        stations=(
            SSS,
            FSY,
            SUN,
            _st("TAR", "Tarneit", -37.83217, 144.69471),
            _st("WVL", "Wyndham Vale", -37.87289, 144.60873),
            _st("LRA", "Lara", -38.02243, 144.41440),
            _st("CRO", "Corio", -38.07283, 144.37977),
            _st("NGL", "North Geelong", -38.12284, 144.35227),
            _st("GEL", "Geelong", -38.14424, 144.35499),
        ),
    ),
    Line(
        code="BAT",
        short_name="Ballarat",
        long_name="Ballarat - Melbourne Via Melton",
        color="8F1A95",
        text_color="FFFFFF",
        stations=(
            SSS,
            FSY,
            SUN,
            _st("DPK", "Deer Park", -37.77727, 144.77083),
            _st("CPS", "Caroline Springs", -37.76609, 144.73572),
            _st("RBK", "Rockbank", -37.72919, 144.65071),
            _st("MEL", "Melton", -37.70336, 144.57222),
            _st("BMH", "Bacchus Marsh", -37.68783, 144.43750),
            _st("BLN", "Ballan", -37.60430, 144.22545),
            _st("BAT", "Ballarat", -37.55866, 143.85953),
        ),
    ),
)

TRAM_LINES = (
    Line(
        code="19",
        short_name="19",
        long_name="North Coburg - Flinders Street Station & City",
        color="78BE20",
        text_color="000000",
        headsign="North Coburg",
        stations=(
            _st("T1", "Flinders Street Station/Elizabeth St #1", -37.81770, 144.96480),
            _st("T7", "Queen Victoria Market/Elizabeth St #7", -37.80610, 144.95900),
            _st("T9", "Royal Melbourne Hospital/Elizabeth St #9", -37.79920, 144.95610),
            _st("T19", "Brunswick Rd/Sydney Rd #19", -37.77700, 144.95990),
            _st("T24", "Brunswick Town Hall/Sydney Rd #24", -37.76800, 144.96100),
            _st("T30", "Moreland Rd/Sydney Rd #30", -37.75600, 144.96150),
            _st("T38", "Bell St/Sydney Rd #38", -37.74500, 144.96300),
            _st("T46", "North Coburg/Sydney Rd #46", -37.73100, 144.96400),
        ),
    ),
    Line(
        code="96",
        short_name="96",
        long_name="East Brunswick - City",
        color="78BE20",
        text_color="000000",
        headsign="East Brunswick",
        stations=(
            _st("S1", "Southern Cross Station/Spencer St #1", -37.81700, 144.95330),
            _st("S3", "Elizabeth St/Bourke St #3", -37.81440, 144.96300),
            _st("S5", "Swanston St/Bourke St #5", -37.81330, 144.96560),
            _st("S8", "Spring St/Bourke St #8", -37.81080, 144.97250),
            _st("S11", "Melbourne Museum/Nicholson St #11", -37.80300, 144.97170),
            _st("S16", "Brunswick Rd/Nicholson St #16", -37.77620, 144.97360),
            _st("S22", "Blyth St/Nicholson St #22", -37.76300, 144.97600),
            _st("S23", "East Brunswick/Nicholson St #23", -37.75900, 144.97650),
        ),
    ),
)

# Service ids follow Transport Victoria's: T0 Monday to Friday, T2 Saturday, T3 Sunday.
WEEKDAY, SATURDAY, SUNDAY = "T0", "T2", "T3"

NETWORKS: dict[str, ModeNetwork] = {
    "1": ModeNetwork(
        mode="1",
        route_type=2,
        speed=1300.0,
        rail=True,
        city_headsign="Southern Cross",
        first_stop_id=20001,
        lines=REGIONAL_LINES,
        headways=(
            Headway(service_id=WEEKDAY, first=6 * 60, last=21 * 60, every=180),
            Headway(service_id=SATURDAY, first=8 * 60, last=20 * 60, every=240),
            Headway(service_id=SUNDAY, first=9 * 60, last=21 * 60, every=240),
        ),
    ),
    "2": ModeNetwork(
        mode="2",
        route_type=400,
        speed=700.0,
        rail=True,
        city_headsign="Flinders Street",
        first_stop_id=11001,
        lines=METRO_LINES,
        headways=(
            Headway(service_id=WEEKDAY, first=6 * 60, last=22 * 60, every=60),
            # The Night Network trip runs past midnight, so its times exceed 24:00:00.
            Headway(
                service_id=SATURDAY, first=8 * 60, last=20 * 60, every=180, extra=(23 * 60 + 50,)
            ),
            Headway(service_id=SUNDAY, first=8 * 60, last=20 * 60, every=180),
        ),
    ),
    "3": ModeNetwork(
        mode="3",
        route_type=0,
        speed=250.0,
        rail=False,
        city_headsign="City",
        first_stop_id=18001,
        lines=TRAM_LINES,
        headways=(
            Headway(service_id=WEEKDAY, first=6 * 60, last=22 * 60, every=60),
            Headway(service_id=SATURDAY, first=8 * 60, last=20 * 60, every=180),
            Headway(service_id=SUNDAY, first=8 * 60, last=20 * 60, every=180),
        ),
    ),
}
