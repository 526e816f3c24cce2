"""Stock-movement data: readers, labels, chronological splits, windows and credibility features.

Demo data: the preprocessed StockNet dataset (Xu & Cohen, ACL 2018): per-stock price files and
per-stock, per-day tweet files. Paper data: the Xueqiu posts of He & Gu (arXiv:2112.13593) with
daily prices from a market-data library. Both are turned into one :class:`Corpus`:

- a price table, rows grouped by stock and ascending by date, with the close-to-close movement
  and the open / high / low relative to the previous close (the preprocessed StockNet columns);
- a post table: stock, UTC time, poster, text, retweet flag and a lexicon stance.

:func:`build_samples` makes one candidate sample per (stock, anchor trading day ``a``). The
decision is taken at the market close of ``a``: the price window ends with day ``a``, the post
window holds the posts published before that close, and every poster statistic uses only
outcomes known before ``min(close of a, start of the validation period)``. The label looks
strictly after ``a``. Splits are chronological by the date on which the label is resolved.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reprolab.core.errors import ConfigError, DataError
from reprolab.core.io import atomic_path

log = logging.getLogger("reprolab.finance")

SPLITS: tuple[str, ...] = ("train", "dev", "test")
#: ``price_feat`` columns of a :class:`Corpus`.
PRICE_COLUMNS: tuple[str, ...] = ("open_rel", "high_rel", "low_rel", "movement", "volume")
#: The 7 price features of a window (MMAN after Feng et al. 2019), relative to the previous close.
WINDOW_FEATURES: tuple[str, ...] = ("open", "close", "high", "low", "volume", "high-low", "open-close")
#: Per-post credibility (social-impact) features; StockNet has poster ids only, so these are proxies.
CREDIBILITY_FEATURES: tuple[str, ...] = (
    "log posts",
    "log distinct stocks",
    "log active days",
    "log resolved calls",
    "hit rate - 0.5",
    "mean call return (%)",
    "retweet",
    "known poster",
)
#: Small bullish / bearish lexicon that gives a post a stance (+1 / -1 / 0), used only to score a
#: poster's past calls against later movements (the "past agreement" credibility proxy).
BULLISH = frozenset(
    ["buy", "buying", "bought", "long", "bull", "bulls", "bullish", "call", "calls", "up", "upside", "breakout", "higher", "green", "rally", "rallies", "beat", "beats", "upgrade", "upgraded", "moon", "rocket", "strong", "gain", "gains", "rise", "rises", "rising", "soar", "soars", "outperform", "rebound", "bounce"]
)
BEARISH = frozenset(
    ["sell", "selling", "sold", "short", "shorting", "shorts", "bear", "bears", "bearish", "put", "puts", "down", "downside", "lower", "red", "crash", "miss", "misses", "downgrade", "downgraded", "weak", "drop", "drops", "fall", "falls", "falling", "plunge", "plunges", "underperform", "dump", "tank", "tanks"]
)

_LABEL_RULES = ("stocknet", "mman")
_SECONDS_PER_DAY = 86_400


# --------------------------------------------------------------------------- corpus


@dataclass
class Corpus:
    """Prices and posts of a set of stocks (see the module docstring).

    Attributes
    ----------
    stocks
        Ticker of each stock index.
    price_stock, price_date, price_close_time, price_feat
        Price rows grouped by stock, ascending by date: stock index, date (``datetime64[D]``),
        market close as UTC seconds, and :data:`PRICE_COLUMNS`.
    post_stock, post_time, post_user, post_retweet, post_stance
        One row per post, sorted by (stock, time): stock index, UTC seconds, poster index,
        retweet flag, lexicon stance (-1, 0, +1).
    texts
        Text of each post (tokens joined by spaces).
    users
        Poster id of each poster index.
    """

    stocks: list[str]
    price_stock: np.ndarray
    price_date: np.ndarray
    price_close_time: np.ndarray
    price_feat: np.ndarray
    post_stock: np.ndarray
    post_time: np.ndarray
    post_user: np.ndarray
    post_retweet: np.ndarray
    post_stance: np.ndarray
    texts: list[str]
    users: list[str]

    @property
    def n_posts(self) -> int:
        return len(self.post_time)


def save_corpus(corpus: Corpus, path: str | os.PathLike[str]) -> None:
    """Write a corpus as one ``.npz`` (texts as a UTF-8 buffer with offsets), atomically."""
    arrays = {
        f.name: getattr(corpus, f.name) for f in fields(corpus) if f.name not in ("stocks", "texts", "users")
    }
    arrays["price_date"] = corpus.price_date.astype("datetime64[D]").astype(np.int64)
    text_buf, text_off = _pack_strings(corpus.texts)
    user_buf, user_off = _pack_strings(corpus.users)
    stock_buf, stock_off = _pack_strings(corpus.stocks)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            text_buf=text_buf,
            text_off=text_off,
            user_buf=user_buf,
            user_off=user_off,
            stock_buf=stock_buf,
            stock_off=stock_off,
            **arrays,
        )


def load_corpus(path: str | os.PathLike[str]) -> Corpus:
    """Read a corpus written by :func:`save_corpus`."""
    try:
        with np.load(path) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:
        raise DataError(
            f"{path}: not a readable corpus file ({err}); delete it and rerun mman_corpus"
        ) from err
    kwargs = {k: v for k, v in data.items() if not k.endswith(("_buf", "_off"))}
    kwargs["price_date"] = kwargs["price_date"].astype("datetime64[D]")
    return Corpus(
        stocks=_unpack_strings(data["stock_buf"], data["stock_off"]),
        texts=_unpack_strings(data["text_buf"], data["text_off"]),
        users=_unpack_strings(data["user_buf"], data["user_off"]),
        **kwargs,
    )


def _pack_strings(strings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [s.encode("utf-8") for s in strings]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets


def _unpack_strings(buf: np.ndarray, offsets: np.ndarray) -> list[str]:
    raw = buf.tobytes()
    return [raw[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(len(offsets) - 1)]


def close_times(dates: np.ndarray, timezone: str, close: str) -> np.ndarray:
    """Market close of each date as UTC seconds (``close`` is local ``HH:MM`` in ``timezone``).

    Half-day sessions are not modelled: a post published between an early close and the
    nominal close counts for the same decision as one published just before the close.
    """
    hours, minutes = (int(x) for x in close.split(":"))
    local = pd.DatetimeIndex(pd.to_datetime(dates)) + pd.Timedelta(hours=hours, minutes=minutes)
    utc = local.tz_localize(timezone, nonexistent="shift_forward", ambiguous=False).tz_convert("UTC")
    return utc.tz_localize(None).values.astype("datetime64[s]").astype(np.int64)


def stance_of(tokens: list[str]) -> int:
    """+1 if the post has more bullish than bearish lexicon words, -1 if fewer, else 0."""
    bull = sum(t in BULLISH for t in tokens)
    bear = sum(t in BEARISH for t in tokens)
    return int(np.sign(bull - bear))


def read_stocknet_prices(path: str | os.PathLike[str]) -> pd.DataFrame:
    """One preprocessed StockNet price file, ascending by date.

    The file is tab-separated and newest first: date, movement (close-to-close fraction), open,
    high, low (fractions of the previous close), close change, volume (StockNet issue #9: the
    file order is descending).

    Raises
    ------
    DataError
        If the file has the wrong number of columns, unparsable values or repeated dates.
    """
    try:
        df = pd.read_csv(path, sep="\t", header=None)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(
            f"{path}: cannot read the StockNet price file ({err}); re-unpack the archive"
        ) from err
    if df.shape[1] != 7:
        raise DataError(
            f"{path}: expected 7 tab-separated columns (date, movement, open, high, low, close, "
            f"volume), found {df.shape[1]}; is this a preprocessed StockNet price file?"
        )
    df.columns = ["date", "movement", "open_rel", "high_rel", "low_rel", "close_change", "volume"]
    df["date"] = pd.to_datetime(df["date"], format="%Y-%m-%d", errors="coerce")
    numeric = df.columns[1:]
    df[numeric] = df[numeric].apply(pd.to_numeric, errors="coerce")
    if df.isna().any().any():
        row = int(np.flatnonzero(df.isna().any(axis=1).to_numpy())[0])
        raise DataError(
            f"{path}: unparsable value in line {row + 1}; the file is damaged, re-unpack the archive"
        )
    df = df.sort_values("date").reset_index(drop=True)
    if df["date"].duplicated().any():
        raise DataError(f"{path}: repeated dates; the file is damaged, re-unpack the archive")
    return df


def read_stocknet_tweets(folder: str | os.PathLike[str], max_posts_per_day: int | None) -> pd.DataFrame:
    """Posts of one stock from ``tweet/preprocessed/<TICKER>/<date>`` files.

    Like StockNet's ``DataPipe``, only the first ``max_posts_per_day`` lines of each day file are
    kept (``None``: all). Returns columns ``time`` (UTC seconds), ``user``, ``tokens``.
    """
    records = []
    for day_file in sorted(Path(folder).iterdir()):
        if day_file.name.startswith("."):
            continue
        lines = day_file.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines[:max_posts_per_day] if max_posts_per_day else lines):
            try:
                msg = json.loads(line)
                records.append((msg["created_at"], msg["user_id_str"], msg["text"]))
            except (json.JSONDecodeError, KeyError) as err:
                raise DataError(
                    f"{day_file}: line {number + 1} is not a StockNet tweet record ({err}); "
                    "re-unpack the archive"
                ) from err
    df = pd.DataFrame(records, columns=["created_at", "user", "tokens"])
    times = pd.to_datetime(df["created_at"], format="%a %b %d %H:%M:%S %z %Y", utc=True)
    df["time"] = times.dt.tz_localize(None).values.astype("datetime64[s]").astype(np.int64)
    return df[df["tokens"].map(len) > 0].drop(columns="created_at")


def read_stocknet(
    root: str | os.PathLike[str],
    stocks: list[str] | None,
    max_posts_per_day: int | None,
    timezone: str,
    close: str,
) -> Corpus:
    """Build a :class:`Corpus` from an unpacked StockNet folder.

    Parameters
    ----------
    root
        Folder holding ``price/preprocessed`` and ``tweet/preprocessed``.
    stocks
        Tickers to use (``None``: every stock with a price file).
    max_posts_per_day
        Keep the first N lines of each day file (StockNet keeps 30).
    timezone, close
        The market's time zone and local closing time (``America/New_York``, ``16:00``).

    Raises
    ------
    DataError
        If the folder layout is wrong or a requested ticker has no price file.
    """
    root = Path(root)
    price_dir, tweet_dir = root / "price" / "preprocessed", root / "tweet" / "preprocessed"
    if not price_dir.is_dir() or not tweet_dir.is_dir():
        raise DataError(
            f"{root}: expected price/preprocessed and tweet/preprocessed folders (StockNet layout); "
            "delete the folder and rerun to unpack the archive again"
        )
    available = sorted(p.stem for p in price_dir.glob("*.txt"))
    chosen = available if not stocks else list(stocks)
    missing = sorted(set(chosen) - set(available))
    if missing:
        raise ConfigError(
            f"papers.mman.stocks: no StockNet price file for {', '.join(missing)} in {price_dir}; "
            f"known tickers: {', '.join(available)}"
        )
    prices, posts = [], []
    for index, ticker in enumerate(chosen):
        df = read_stocknet_prices(price_dir / f"{ticker}.txt")
        df["stock"] = index
        prices.append(df)
        if (tweet_dir / ticker).is_dir():
            tw = read_stocknet_tweets(tweet_dir / ticker, max_posts_per_day)
            tw["stock"] = index
            posts.append(tw)
    return assemble_corpus(
        chosen,
        pd.concat(prices, ignore_index=True),
        pd.concat(posts, ignore_index=True) if posts else _empty_posts(),
        timezone,
        close,
    )


def _empty_posts() -> pd.DataFrame:
    return pd.DataFrame(
        {"time": np.zeros(0, np.int64), "user": [], "tokens": [], "stock": np.zeros(0, np.int64)}
    )


def assemble_corpus(
    stocks: list[str], prices: pd.DataFrame, posts: pd.DataFrame, timezone: str, close: str
) -> Corpus:
    """Turn tidy price and post tables into a :class:`Corpus`.

    Parameters
    ----------
    prices
        Columns ``stock`` (index into ``stocks``), ``date`` and :data:`PRICE_COLUMNS`.
    posts
        Columns ``stock``, ``time`` (UTC seconds), ``user`` (str), ``tokens`` (list of str).
    """
    prices = prices.sort_values(["stock", "date"]).reset_index(drop=True)
    posts = posts.sort_values(["stock", "time"], kind="stable").reset_index(drop=True)
    dates = prices["date"].values.astype("datetime64[D]")
    user_codes, users = pd.factorize(posts["user"].astype(str))
    tokens = posts["tokens"].tolist()
    return Corpus(
        stocks=list(stocks),
        price_stock=prices["stock"].to_numpy(np.int32),
        price_date=dates,
        price_close_time=(
            prices["close_time"].to_numpy(np.int64)
            if "close_time" in prices
            else close_times(dates, timezone, close)
        ),
        price_feat=prices[list(PRICE_COLUMNS)].to_numpy(np.float64),
        post_stock=posts["stock"].to_numpy(np.int32),
        post_time=posts["time"].to_numpy(np.int64),
        post_user=user_codes.astype(np.int32),
        post_retweet=np.array([len(t) > 0 and t[0] == "rt" for t in tokens], dtype=bool),
        post_stance=np.array([stance_of(t) for t in tokens], dtype=np.int8),
        texts=[" ".join(t) for t in tokens],
        users=[str(u) for u in users],
    )


# --------------------------------------------------------------------------- paper-scale data


def xueqiu_market(code: str) -> tuple[str, str, str]:
    """Market data ticker, time zone and close of a Xueqiu file stem (SH600000, SZ000001, 00700, TSLA)."""
    if re.fullmatch(r"SH\d{6}", code):
        return f"{code[2:]}.SS", "Asia/Shanghai", "15:00"
    if re.fullmatch(r"SZ\d{6}", code):
        return f"{code[2:]}.SZ", "Asia/Shanghai", "15:00"
    if re.fullmatch(r"\d{5}", code):
        return f"{int(code):04d}.HK", "Asia/Hong_Kong", "16:00"
    if code.startswith("."):
        return {".DJI": "^DJI", ".INX": "^GSPC", ".NDX": "^NDX"}.get(code, code), "America/New_York", "16:00"
    return code, "America/New_York", "16:00"


def read_xueqiu_posts(path: str | os.PathLike[str]) -> pd.DataFrame:
    """One stock's posts from the Xueqiu repository (an ``.xlsx`` with name, time, text, ... columns).

    Only the date of a post is known, so its time is set to 23:59:59 local (it is used only for
    decisions after that day's close). Characters are the tokens (no Chinese word segmenter is
    installed; the card's new-word discovery is not implemented).
    """
    try:
        df = pd.read_excel(path)
    except ImportError as err:
        raise DataError("reading the Xueqiu .xlsx files needs openpyxl: pip install openpyxl") from err
    need = {"name", "time", "text"}
    if not need <= set(df.columns):
        raise DataError(
            f"{path}: expected columns {sorted(need)}, found {list(df.columns)}; is this a Xueqiu file?"
        )
    _, tz, _ = xueqiu_market(Path(path).stem)
    day = pd.to_datetime(df["time"], errors="coerce")
    keep = day.notna() & df["text"].notna()
    df, day = df[keep].copy(), day[keep]
    local = pd.DatetimeIndex(day.dt.normalize()) + pd.Timedelta(hours=23, minutes=59, seconds=59)
    df["time"] = (
        local.tz_localize(tz)
        .tz_convert("UTC")
        .tz_localize(None)
        .values.astype("datetime64[s]")
        .astype(np.int64)
    )
    df["user"] = df["name"].astype(str)
    df["tokens"] = df["text"].astype(str).map(lambda s: [c for c in s if not c.isspace()])
    return df[["time", "user", "tokens"]]


def prices_from_ohlcv(df: pd.DataFrame) -> pd.DataFrame:
    """Daily OHLCV (columns date, open, high, low, close, adj_close, volume) -> :data:`PRICE_COLUMNS`.

    Movement is the close-to-close change of the adjusted close; open, high and low are taken
    relative to the previous (unadjusted) close, as in the preprocessed StockNet files.
    """
    df = df.sort_values("date").reset_index(drop=True)
    prev_close = df["close"].shift(1)
    out = pd.DataFrame(
        {
            "date": pd.to_datetime(df["date"]),
            "open_rel": df["open"] / prev_close - 1,
            "high_rel": df["high"] / prev_close - 1,
            "low_rel": df["low"] / prev_close - 1,
            "movement": df["adj_close"].pct_change(),
            "volume": df["volume"].astype(float),
        }
    )
    return out.iloc[1:].reset_index(drop=True)


def fetch_prices(ticker: str, start: str, end: str, out_csv: str | os.PathLike[str]) -> None:
    """Download daily OHLCV of one ticker with yfinance (unadjusted and adjusted close) to a CSV cache.

    Raises
    ------
    DataError
        If yfinance is not installed or returns no rows.
    """
    try:
        import yfinance
    except ImportError as err:
        raise DataError("paper-scale prices of mman are fetched with yfinance: pip install yfinance") from err
    raw = yfinance.download(ticker, start=start, end=end, auto_adjust=False, progress=False, actions=False)
    if raw is None or raw.empty:
        raise DataError(
            f"yfinance returned no prices for {ticker} between {start} and {end}; check the ticker"
        )
    if isinstance(raw.columns, pd.MultiIndex):
        raw.columns = raw.columns.get_level_values(0)
    table = pd.DataFrame(
        {
            "date": raw.index.strftime("%Y-%m-%d"),
            "open": raw["Open"].values,
            "high": raw["High"].values,
            "low": raw["Low"].values,
            "close": raw["Close"].values,
            "adj_close": raw["Adj Close"].values,
            "volume": raw["Volume"].values,
        }
    )
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)


def read_xueqiu(
    root: str | os.PathLike[str],
    prices_csv: str | os.PathLike[str],
    stocks: list[str] | None,
    top_stocks: int,
    max_posts_per_day: int | None,
) -> Corpus:
    """Build a :class:`Corpus` from the unpacked Xueqiu repository and the fetched price table.

    Parameters
    ----------
    root
        Folder holding the per-stock ``.xlsx`` files (at any depth).
    prices_csv
        Written by :func:`run_xueqiu_prices`: columns stem, date, open, high, low, close, adj_close, volume.
    stocks
        File stems to use; empty = the ``top_stocks`` files with the most posts (the paper's list of
        150 stocks is not released).
    """
    files = {p.stem: p for p in Path(root).rglob("*.xlsx")}
    if not files:
        raise DataError(
            f"{root}: no .xlsx files; delete the folder and rerun to unpack the Xueqiu archive again"
        )
    posts = {stem: read_xueqiu_posts(path) for stem, path in files.items() if not stocks or stem in stocks}
    chosen = list(stocks) if stocks else sorted(posts, key=lambda k: -len(posts[k]))[:top_stocks]
    table = pd.read_csv(prices_csv, dtype={"stem": str})
    price_frames, post_frames = [], []
    for index, stem in enumerate(chosen):
        ohlcv = table[table["stem"] == stem]
        if ohlcv.empty:
            log.warning("no prices for %s; the stock is skipped", stem)
            continue
        px = prices_from_ohlcv(ohlcv)
        _, tz, close = xueqiu_market(stem)
        px["close_time"] = close_times(px["date"].values.astype("datetime64[D]"), tz, close)
        px["stock"] = index
        price_frames.append(px)
        tw = posts[stem].assign(stock=index)
        if max_posts_per_day:
            tw = tw.groupby(tw["time"] // _SECONDS_PER_DAY, group_keys=False).head(max_posts_per_day)
        post_frames.append(tw)
    if not price_frames:
        raise DataError(f"{prices_csv}: no prices for any chosen stock; delete it and rerun mman_prices")
    return assemble_corpus(
        chosen,
        pd.concat(price_frames, ignore_index=True),
        pd.concat(post_frames, ignore_index=True),
        "UTC",
        "00:00",
    )


def run_xueqiu_prices(
    archive: str, unpack_dir: str, splits: dict[str, list[str]], price_days: int, out_csv: str
) -> None:
    """The ``mman_prices`` rule: fetch daily prices of every stock in the Xueqiu archive into one CSV.

    The range starts ``2 x price_days`` calendar days before the training period (for the first
    price windows) and ends 10 days after the test period (for the label horizon).
    """
    import tempfile

    from reprolab.data.archives import unpack

    root = unpack(archive, unpack_dir)
    start = (np.datetime64(splits["train"][0]) - np.timedelta64(2 * price_days, "D")).astype(str)
    end = (np.datetime64(splits["test"][1]) + np.timedelta64(10, "D")).astype(str)
    frames, failed = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(Path(root).rglob("*.xlsx")):
            ticker, _, _ = xueqiu_market(path.stem)
            try:
                fetch_prices(ticker, start, end, Path(tmp) / "p.csv")
            except DataError as err:
                failed.append(f"{path.stem} ({err})")
                continue
            frames.append(pd.read_csv(Path(tmp) / "p.csv").assign(stem=path.stem))
    if not frames:
        raise DataError("no prices could be fetched for any Xueqiu stock: " + "; ".join(failed[:5]))
    for line in failed:
        log.warning("no prices: %s", line)
    with atomic_path(out_csv) as tmp_csv:
        pd.concat(frames, ignore_index=True).to_csv(tmp_csv, index=False)


def run_corpus(
    settings: dict[str, Any], archive: str, unpack_dir: str, prices_csv: str | None, out: str
) -> None:
    """The ``mman_corpus`` rule: unpack the archive (atomically) and write the corpus."""
    from reprolab.data.archives import unpack

    root = unpack(archive, unpack_dir)
    market = settings["market"]
    if settings["dataset"] == "stocknet_demo":
        corpus = read_stocknet(
            root,
            settings["stocks"] or None,
            settings["max_posts_per_day"],
            market["timezone"],
            market["close"],
        )
    else:
        if prices_csv is None:
            raise ConfigError("papers.mman.dataset xueqiu needs the price table of rule mman_prices")
        corpus = read_xueqiu(
            root,
            prices_csv,
            settings["stocks"],
            settings.get("top_stocks", 150),
            settings["max_posts_per_day"],
        )
    save_corpus(corpus, out)
    log.info(
        "corpus: %d stocks, %d price rows, %d posts, %d posters",
        len(corpus.stocks),
        len(corpus.price_date),
        corpus.n_posts,
        len(corpus.users),
    )


def run_samples(corpus_path: str, settings: dict[str, Any], out_samples: str, out_summary: str) -> None:
    """The ``mman_samples`` rule: build and write the samples and their summary."""
    from reprolab.core.io import write_json

    corpus = load_corpus(corpus_path)
    samples = build_samples(corpus, SampleConfig.from_config(settings))
    for name, code in (("train", 0), ("dev", 1), ("test", 2)):
        if not ((samples["split"] == code) & (samples["label"] >= 0)).any():
            raise ConfigError(
                f"papers.mman.splits.{name}: no labelled sample falls into {settings['splits'][name]}; "
                "check the dates against the data's range (StockNet: 2014-01-01 to 2016-01-01)"
            )
    save_samples(samples, out_samples)
    summary = sample_summary(samples, corpus)
    summary["stock_names"] = corpus.stocks
    write_json(out_summary, summary)
    log.info("samples: %s", summary)


# --------------------------------------------------------------------------- labels and splits


def label_returns(
    movement: np.ndarray, stock: np.ndarray, rule: str, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return of the label of every anchor row and the row on which it is resolved.

    Parameters
    ----------
    movement
        Close-to-close movement of each price row (rows grouped by stock, ascending).
    stock
        Stock index of each row.
    rule
        ``stocknet``: close of ``a + horizon`` over close of ``a`` (``horizon = 1``: the next
        day's movement, Xu & Cohen 2018). ``mman``: mean of the closes of ``a+1 .. a+horizon``
        over the close of ``a`` (He & Gu 2021, card Sec. 2.1).
    horizon
        Trading days.

    Returns
    -------
    ret, resolve_row
        ``ret[a]`` (NaN where the horizon runs past the stock's last row) and ``a + horizon``.
    """
    if rule not in _LABEL_RULES:
        raise ConfigError(
            f"papers.mman.label.rule: {rule!r} is unknown; use one of {', '.join(_LABEL_RULES)}"
        )
    n = len(movement)
    log_close = np.zeros(n)
    # Relative closes per stock: cumulative product of (1 + movement), restarted at each stock.
    growth = np.log1p(movement)
    cum = np.cumsum(growth)
    starts = np.r_[0, np.flatnonzero(np.diff(stock)) + 1]
    offset = np.repeat(cum[starts] - growth[starts], np.diff(np.r_[starts, n]))
    log_close = cum - offset
    resolve = np.arange(n) + horizon
    valid = resolve < n
    valid[valid] = stock[resolve[valid]] == stock[valid]
    ret = np.full(n, np.nan)
    idx = np.flatnonzero(valid)
    if rule == "stocknet":
        ret[idx] = np.expm1(log_close[idx + horizon] - log_close[idx])
    else:
        ahead = np.stack([np.exp(log_close[idx + k] - log_close[idx]) for k in range(1, horizon + 1)])
        ret[idx] = ahead.mean(0) - 1.0
    return ret, resolve


def labels_from_returns(ret: np.ndarray, dead_zone: tuple[float, float]) -> np.ndarray:
    """1 (up) if ``ret > 1e-7``, 0 (down) otherwise, -1 inside ``[lo, hi)`` or where ``ret`` is NaN.

    StockNet drops samples with ``-0.5 % <= movement < 0.55 %`` and calls up ``movement > 1e-7``
    (``DataPipe._get_prices_and_ts``); MMAN drops ``|return| < 0.75 %``.
    """
    lo, hi = dead_zone
    y = np.where(ret > 1e-7, 1, 0).astype(np.int8)
    y[(ret >= lo) & (ret < hi)] = -1
    y[np.isnan(ret)] = -1
    return y


def split_of_dates(dates: np.ndarray, splits: dict[str, list[str]]) -> np.ndarray:
    """0 / 1 / 2 for dates in the train / dev / test ranges ``[start, end)``, -1 elsewhere."""
    check_splits(splits)
    out = np.full(len(dates), -1, dtype=np.int8)
    days = dates.astype("datetime64[D]")
    for code, name in enumerate(SPLITS):
        start, end = (np.datetime64(d, "D") for d in splits[name])
        out[(days >= start) & (days < end)] = code
    return out


def check_splits(splits: dict[str, list[str]]) -> None:
    """The three ranges must be non-empty, in train < dev < test order and must not overlap."""
    try:
        ranges = [(np.datetime64(splits[n][0], "D"), np.datetime64(splits[n][1], "D")) for n in SPLITS]
    except (KeyError, ValueError, IndexError) as err:
        raise ConfigError(
            f"papers.mman.splits: need train, dev and test as [start, end] ISO dates ({err})"
        ) from err
    for name, (start, end) in zip(SPLITS, ranges):
        if not start < end:
            raise ConfigError(f"papers.mman.splits.{name}: start {start} is not before end {end}")
    for (a, (_, end_a)), (b, (start_b, _)) in zip(zip(SPLITS, ranges), zip(SPLITS[1:], ranges[1:])):
        if start_b < end_a:
            raise ConfigError(
                f"papers.mman.splits: {b} starts ({start_b}) before {a} ends ({end_a}); the splits "
                "must be chronological and must not overlap"
            )


# --------------------------------------------------------------------------- samples


@dataclass
class SampleConfig:
    """Settings of :func:`build_samples` (``papers.mman`` keys ``label``, ``splits``, ``window``)."""

    rule: str = "stocknet"
    horizon: int = 1
    dead_zone: tuple[float, float] = (-0.005, 0.0055)
    splits: dict[str, list[str]] | None = None
    price_window: int = 64
    text_window_days: float = 14.0
    max_posts: int = 96
    min_posts: int = 1
    timezone: str = "America/New_York"

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> SampleConfig:
        label, window = cfg["label"], cfg["window"]
        return cls(
            rule=label["rule"],
            horizon=label["horizon"],
            dead_zone=tuple(label["dead_zone"]),
            splits=cfg["splits"],
            price_window=window["price_days"],
            text_window_days=window["text_days"],
            max_posts=window["max_posts"],
            min_posts=window["min_posts"],
            timezone=cfg["market"]["timezone"],
        )


def build_samples(corpus: Corpus, cfg: SampleConfig) -> dict[str, np.ndarray]:
    """Candidate samples with labels, splits, price-window rows, post windows and credibility features.

    A row is kept if its label resolves inside a split period (train / dev / test) or if it is
    a trading day of the test period, if ``price_window`` days of prices end at its anchor and if
    at least ``min_posts`` posts fall into its text window.

    Returns
    -------
    dict of arrays
        ``stock``, ``anchor_date``, ``resolve_date`` (``datetime64[D]`` as int days), ``split``
        (-1 none, 0 train, 1 dev, 2 test), ``label`` (-1 dropped by the dead zone), ``label_return``,
        ``next_return`` (the close-to-close movement of day ``a + 1``: a fill at the decision's own
        close, optimistic), ``next_open_return`` (open of ``a + 1`` to open of ``a + 2``: a fill at the
        next open, see :func:`open_to_open_returns`), ``tradable`` (day ``a + 1`` is in the test period),
        ``next_date`` (day ``a + 1``), ``price_row`` (row of the anchor in the corpus price table),
        ``decision_time``, ``post_ids`` ``[N, P]`` (-1 = padding, oldest first), ``post_age_hours``
        ``[N, P]``, ``credibility`` ``[N, P, F]`` (:data:`CREDIBILITY_FEATURES`).
    """
    splits = cfg.splits or {}
    check_splits(splits)
    c = corpus
    ret, resolve = label_returns(c.price_feat[:, 3], c.price_stock, cfg.rule, cfg.horizon)
    labels = labels_from_returns(ret, cfg.dead_zone)
    n = len(ret)
    resolve_ok = ~np.isnan(ret)
    resolve_date = np.where(resolve_ok, c.price_date[np.minimum(resolve, n - 1)], np.datetime64("NaT"))
    split = np.where(resolve_ok, split_of_dates(resolve_date, splits), -1).astype(np.int8)
    nxt = np.minimum(np.arange(n) + 1, n - 1)
    has_next = (np.arange(n) + 1 < n) & (c.price_stock[nxt] == c.price_stock)
    test_start, test_end = (np.datetime64(d, "D") for d in splits["test"])
    tradable = has_next & (c.price_date[nxt] >= test_start) & (c.price_date[nxt] < test_end)
    history = np.arange(n) - _group_start(c.price_stock) >= cfg.price_window - 1
    keep = history & ((split >= 0) | tradable)
    rows = np.flatnonzero(keep)
    decision = c.price_close_time[rows]
    post_ids = post_windows(
        c.post_stock,
        c.post_time,
        c.price_stock[rows],
        decision,
        cfg.text_window_days * _SECONDS_PER_DAY,
        cfg.max_posts,
    )
    enough = (post_ids >= 0).sum(1) >= cfg.min_posts
    rows, decision, post_ids = rows[enough], decision[enough], post_ids[enough]
    freeze_tz = "UTC" if cfg.timezone == "per_stock" else cfg.timezone
    freeze = int(close_times(np.array([splits["dev"][0]], dtype="datetime64[D]"), freeze_tz, "00:00")[0])
    as_of = np.minimum(decision, freeze)
    cred = credibility_features(c, post_ids, as_of)
    age = np.where(post_ids >= 0, (decision[:, None] - c.post_time[np.maximum(post_ids, 0)]) / 3600.0, 0.0)
    return {
        "stock": c.price_stock[rows].astype(np.int32),
        "anchor_date": c.price_date[rows].astype(np.int64),
        "resolve_date": resolve_date[rows].astype("datetime64[D]").astype(np.int64),
        "split": split[rows],
        "label": np.where(split[rows] >= 0, labels[rows], -1).astype(np.int8),
        "label_return": ret[rows].astype(np.float32),
        "next_return": np.where(has_next[rows], c.price_feat[nxt[rows], 3], np.nan).astype(np.float32),
        "next_open_return": open_to_open_returns(c.price_feat, c.price_stock)[rows].astype(np.float32),
        "tradable": tradable[rows],
        "next_date": c.price_date[nxt[rows]].astype(np.int64),
        "price_row": rows.astype(np.int64),
        "decision_time": decision,
        "post_ids": post_ids.astype(np.int32),
        "post_age_hours": age.astype(np.float32),
        "credibility": cred.astype(np.float32),
    }


def open_to_open_returns(price_feat: np.ndarray, stock: np.ndarray) -> np.ndarray:
    """Return of holding from the open of day ``a + 1`` to the open of day ``a + 2``, for every row ``a``.

    A decision taken at the close of ``a`` (with the posts published up to that close) can first
    be executed at the next open, and is held until the next decision is executed, one open
    later. From the corpus columns (open relative to the previous close, close-to-close movement):
    ``open[a+2] / open[a+1] = (1 + movement[a+1]) (1 + open_rel[a+2]) / (1 + open_rel[a+1])``.
    The identity holds for whichever close series the opens are measured against, as long as the
    movement uses the same one: StockNet's preprocessed opens are raw prices over the previous
    *adjusted* close (checked on AAPL, 2015-10-01: raw open 109.07 / adjusted close 106.1), and
    the ratio gives the raw open-to-open return. With :func:`prices_from_ohlcv` (opens over the
    unadjusted close, movement of the adjusted close) a dividend going ex on day ``a + 1`` is
    counted in the return.

    Parameters
    ----------
    price_feat
        ``[N, len(PRICE_COLUMNS)]`` price rows grouped by stock, ascending by date.
    stock
        ``[N]`` stock index of each row.

    Returns
    -------
    np.ndarray
        ``[N]`` returns; NaN where day ``a + 2`` of the same stock is not in the table.
    """
    n = len(stock)
    out = np.full(n, np.nan)
    a = np.arange(max(n - 2, 0))
    a = a[stock[a + 2] == stock[a]]  # rows are grouped by stock, so a + 1 belongs to it too
    open_rel = price_feat[:, PRICE_COLUMNS.index("open_rel")]
    movement = price_feat[:, PRICE_COLUMNS.index("movement")]
    out[a] = (1 + movement[a + 1]) * (1 + open_rel[a + 2]) / (1 + open_rel[a + 1]) - 1
    return out


def _group_start(group: np.ndarray) -> np.ndarray:
    """Index of the first row of each row's group (rows grouped contiguously)."""
    n = len(group)
    starts = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
    return np.repeat(starts, np.diff(np.r_[starts, n]))


def post_windows(
    post_stock: np.ndarray,
    post_time: np.ndarray,
    stock: np.ndarray,
    decision: np.ndarray,
    window_seconds: float,
    max_posts: int,
) -> np.ndarray:
    """The latest ``max_posts`` posts of each sample's stock in ``[decision - window, decision)``.

    Posts must be sorted by (stock, time). Returns post indices ``[N, max_posts]``, oldest first,
    left-padded with -1. A post published exactly at the close is not used for that close.
    """
    key_post = (post_stock.astype(np.int64) << 32) | post_time.astype(np.int64)
    hi = np.searchsorted(key_post, (stock.astype(np.int64) << 32) | decision.astype(np.int64), side="left")
    lo = np.searchsorted(
        key_post,
        (stock.astype(np.int64) << 32) | (decision - int(window_seconds)).astype(np.int64),
        side="left",
    )
    idx = hi[:, None] - max_posts + np.arange(max_posts)[None, :]
    return np.where(idx >= lo[:, None], idx, -1)


def post_outcomes(corpus: Corpus) -> tuple[np.ndarray, np.ndarray]:
    """For each post, the movement of its stock's first close after it and when that is known.

    Returns
    -------
    movement, resolve_time
        NaN / int64 max where no later close exists.
    """
    c = corpus
    key_price = (c.price_stock.astype(np.int64) << 32) | c.price_close_time
    key_post = (c.post_stock.astype(np.int64) << 32) | c.post_time
    row = np.searchsorted(key_price, key_post, side="right")
    ok = row < len(key_price)
    ok[ok] = c.price_stock[row[ok]] == c.post_stock[ok]
    safe = np.minimum(row, len(key_price) - 1)
    movement = np.where(ok, c.price_feat[safe, 3], np.nan)
    when = np.where(ok, c.price_close_time[safe], np.iinfo(np.int64).max)
    return movement, when


def _counts_before(
    ev_user: np.ndarray,
    ev_time: np.ndarray,
    weights: list[np.ndarray],
    q_user: np.ndarray,
    q_time: np.ndarray,
) -> list[np.ndarray]:
    """Sum of each weight over a user's events strictly before ``q_time`` (vectorised, sorted keys)."""
    key = (ev_user.astype(np.int64) << 32) | np.minimum(ev_time, 2**32 - 1)
    order = np.argsort(key, kind="stable")
    key = key[order]
    q_hi = np.searchsorted(key, (q_user.astype(np.int64) << 32) | q_time, side="left")
    q_lo = np.searchsorted(key, q_user.astype(np.int64) << 32, side="left")
    out = []
    for w in weights:
        cum = np.r_[0.0, np.cumsum(w[order], dtype=np.float64)]
        out.append(cum[q_hi] - cum[q_lo])
    return out


def poster_stats(corpus: Corpus, users: np.ndarray, as_of: np.ndarray) -> dict[str, np.ndarray]:
    """Point-in-time statistics of posters, from what was known strictly before ``as_of``.

    Activity (posts, distinct stocks, active UTC days) counts posts published before ``as_of``;
    calls (posts with a lexicon stance) count once the close that resolves them is before
    ``as_of``; a hit is a call whose stance has the sign of that close's movement.
    """
    c = corpus
    ones = np.ones(c.n_posts)
    first_stock = (
        ~pd.DataFrame({"u": c.post_user, "s": c.post_stock, "t": c.post_time})
        .sort_values("t")
        .duplicated(["u", "s"])
        .sort_index()
        .to_numpy()
    )
    day = c.post_time // _SECONDS_PER_DAY
    first_day = (
        ~pd.DataFrame({"u": c.post_user, "d": day, "t": c.post_time})
        .sort_values("t")
        .duplicated(["u", "d"])
        .sort_index()
        .to_numpy()
    )
    posts, stocks, days = _counts_before(
        c.post_user, c.post_time, [ones, first_stock * 1.0, first_day * 1.0], users, as_of
    )
    movement, resolved = post_outcomes(c)
    call = (c.post_stance != 0) & ~np.isnan(movement)
    mv = np.nan_to_num(movement)
    hit = call & (np.sign(mv) == c.post_stance)
    calls, hits, signed = _counts_before(
        c.post_user[call],
        resolved[call],
        [ones[call], hit[call] * 1.0, (c.post_stance * mv)[call]],
        users,
        as_of,
    )
    return {
        "posts": posts,
        "stocks": stocks,
        "days": days,
        "calls": calls,
        "hits": hits,
        "signed_return": signed,
    }


def credibility_features(corpus: Corpus, post_ids: np.ndarray, as_of: np.ndarray) -> np.ndarray:
    """:data:`CREDIBILITY_FEATURES` of every post of every sample, ``[N, P, F]`` (zeros at padding).

    The card's social-impact inputs (fans, followers, posts, profit 'rate', concerned stocks
    'ratio') do not exist in StockNet; the proxies are the poster's activity, breadth, past
    directional hit rate (Laplace-smoothed) and mean signed return of past calls, computed
    point-in-time from ``as_of`` (the decision, frozen at the start of the validation period).
    """
    valid = post_ids >= 0
    flat = np.where(valid, post_ids, 0).ravel()
    q_time = np.broadcast_to(as_of[:, None], post_ids.shape).ravel()
    s = poster_stats(corpus, corpus.post_user[flat], q_time)
    feats = np.stack(
        [
            np.log1p(s["posts"]),
            np.log1p(s["stocks"]),
            np.log1p(s["days"]),
            np.log1p(s["calls"]),
            (s["hits"] + 1.0) / (s["calls"] + 2.0) - 0.5,
            100.0 * s["signed_return"] / (s["calls"] + 2.0),
            corpus.post_retweet[flat].astype(float),
            (s["posts"] > 0).astype(float),
        ],
        axis=-1,
    ).reshape(*post_ids.shape, len(CREDIBILITY_FEATURES))
    return feats * valid[..., None]


def price_windows(corpus: Corpus, price_row: np.ndarray, window: int) -> np.ndarray:
    """The 7 :data:`WINDOW_FEATURES` over the ``window`` trading days ending at each anchor row.

    Prices are relative to the previous close (StockNet's normalisation); volume is
    ``log1p(volume)`` minus its mean over the window, so no value depends on days after the anchor.
    """
    f = corpus.price_feat
    idx = price_row[:, None] - window + 1 + np.arange(window)[None, :]
    o, h, lo, mv, vol = (f[idx, k] for k in range(5))
    logv = np.log1p(np.maximum(vol, 0.0))
    logv = logv - logv.mean(1, keepdims=True)
    return np.stack([o, mv, h, lo, logv, h - lo, o - mv], axis=-1).astype(np.float32)


def save_samples(samples: dict[str, np.ndarray], path: str | os.PathLike[str]) -> None:
    """Write the sample arrays as one ``.npz``, atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **samples)


def load_samples(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read arrays written by :func:`save_samples`."""
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:
        raise DataError(
            f"{path}: not a readable samples file ({err}); delete it and rerun mman_samples"
        ) from err


def sample_summary(samples: dict[str, np.ndarray], corpus: Corpus) -> dict[str, Any]:
    """Counts per split, class balance, posts per sample, date ranges (for the report)."""
    out: dict[str, Any] = {
        "stocks": len(corpus.stocks),
        "posts": corpus.n_posts,
        "posters": len(corpus.users),
    }
    n_posts = (samples["post_ids"] >= 0).sum(1)
    for code, name in enumerate(SPLITS):
        m = (samples["split"] == code) & (samples["label"] >= 0)
        dates = samples["resolve_date"][m].astype("datetime64[D]")
        out[name] = {
            "n": int(m.sum()),
            "up_fraction": float(samples["label"][m].mean()) if m.any() else float("nan"),
            "dropped_by_dead_zone": int(((samples["split"] == code) & (samples["label"] < 0)).sum()),
            "first": str(dates.min()) if m.any() else None,
            "last": str(dates.max()) if m.any() else None,
            "mean_posts": float(n_posts[m].mean()) if m.any() else float("nan"),
        }
    out["tradable"] = int(samples["tradable"].sum())
    return out
