"""Readers, labels, chronological splits and look-ahead-free features of the mman data."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from reprolab.core.errors import ConfigError, DataError
from reprolab.finance.stocknet import (
    SampleConfig,
    build_samples,
    check_splits,
    close_times,
    label_returns,
    labels_from_returns,
    load_corpus,
    post_windows,
    price_windows,
    prices_from_ohlcv,
    read_stocknet,
    read_stocknet_prices,
    save_corpus,
    split_of_dates,
    xueqiu_market,
)

SPLITS = {
    "train": ["2014-01-01", "2014-05-01"],
    "dev": ["2014-05-01", "2014-06-01"],
    "test": ["2014-06-01", "2014-07-01"],
}

# Hand-made StockNet price file, newest first: date, movement, open, high, low, close change, volume.
PRICE_LINES = [
    ("2014-01-10", 0.0100),
    ("2014-01-09", -0.0040),
    ("2014-01-08", 0.0300),
    ("2014-01-07", -0.0200),
    ("2014-01-06", 0.0050),
    ("2014-01-03", 0.0010),
    ("2014-01-02", -0.0100),
]


def write_price_file(path):
    path.write_text("".join(f"{d}\t{mv:.6f}\t0.001\t0.010\t-0.010\t0.5\t1000.0\n" for d, mv in PRICE_LINES))
    return path


def write_stocknet(root):
    (root / "price" / "preprocessed").mkdir(parents=True)
    write_price_file(root / "price" / "preprocessed" / "AAA.txt")
    day = root / "tweet" / "preprocessed" / "AAA"
    day.mkdir(parents=True)
    tweets = [
        {"text": ["$", "aaa", "buy"], "created_at": "Fri Jan 03 20:59:00 +0000 2014", "user_id_str": "1"},
        {
            "text": ["rt", "AT_USER", "sell"],
            "created_at": "Fri Jan 03 21:01:00 +0000 2014",
            "user_id_str": "2",
        },
        {"text": ["third"], "created_at": "Fri Jan 03 22:00:00 +0000 2014", "user_id_str": "2"},
    ]
    (day / "2014-01-03").write_text("".join(json.dumps(t) + "\n" for t in tweets))
    return root


def test_price_file_is_read_ascending(tmp_path):
    df = read_stocknet_prices(write_price_file(tmp_path / "AAA.txt"))
    assert list(df["date"].dt.strftime("%Y-%m-%d")) == [d for d, _ in reversed(PRICE_LINES)]
    assert df["movement"].iloc[-1] == pytest.approx(0.01)


def test_bad_price_file_names_file(tmp_path):
    bad = tmp_path / "BAD.txt"
    bad.write_text("2014-01-02\t0.1\t0.2\n")
    with pytest.raises(DataError, match="BAD.txt"):
        read_stocknet_prices(bad)


def test_stocknet_reader_caps_posts_and_aligns_close(tmp_path):
    root = write_stocknet(tmp_path)
    corpus = read_stocknet(root, None, 2, "America/New_York", "16:00")
    assert corpus.n_posts == 2  # first two lines of the day file, as StockNet's DataPipe
    assert corpus.post_retweet.tolist() == [False, True]
    assert corpus.post_stance.tolist() == [1, -1]
    # 16:00 New York on a January day is 21:00 UTC: the 20:59 post is before the close, 21:01 after.
    close = corpus.price_close_time[corpus.price_date == np.datetime64("2014-01-03")][0]
    assert corpus.post_time[0] < close < corpus.post_time[1]
    save_corpus(corpus, tmp_path / "c.npz")
    again = load_corpus(tmp_path / "c.npz")
    assert again.texts == corpus.texts and again.users == corpus.users
    np.testing.assert_array_equal(again.price_date, corpus.price_date)


def test_unknown_ticker_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="ZZZ"):
        read_stocknet(write_stocknet(tmp_path), ["ZZZ"], 30, "America/New_York", "16:00")


def test_close_times_follow_daylight_saving():
    t = close_times(
        np.array(["2014-01-03", "2014-07-03"], dtype="datetime64[D]"), "America/New_York", "16:00"
    )
    assert (t % 86_400).tolist() == [21 * 3600, 20 * 3600]


def test_labels_of_both_rules_on_hand_made_prices(tmp_path):
    df = read_stocknet_prices(write_price_file(tmp_path / "AAA.txt"))
    mv, stock = df["movement"].to_numpy(), np.zeros(len(df), dtype=int)
    ret, resolve = label_returns(mv, stock, "stocknet", 1)
    np.testing.assert_allclose(ret[:-1], mv[1:], rtol=1e-9)
    assert np.isnan(ret[-1]) and resolve[0] == 1
    y = labels_from_returns(ret, (-0.005, 0.0055))
    # movements: -0.01, 0.001, 0.005, -0.02, 0.03, -0.004, 0.01 -> next-day labels
    assert y.tolist() == [-1, -1, 0, 1, -1, 1, -1]
    ret5, _ = label_returns(mv, stock, "mman", 2)
    closes = np.cumprod(1 + mv)
    assert ret5[0] == pytest.approx((closes[1] + closes[2]) / 2 / closes[0] - 1)
    assert np.isnan(ret5[-2:]).all()


def test_labels_do_not_cross_stocks():
    ret, _ = label_returns(np.array([0.01, 0.02, 0.03, 0.04]), np.array([0, 0, 1, 1]), "stocknet", 1)
    assert np.isnan(ret[1]) and np.isnan(ret[3])


def test_splits_are_chronological_and_checked():
    dates = np.array(["2014-02-01", "2014-05-02", "2014-06-30", "2014-07-01"], dtype="datetime64[D]")
    assert split_of_dates(dates, SPLITS).tolist() == [0, 1, 2, -1]
    overlapping = dict(SPLITS, dev=["2014-04-01", "2014-06-01"])
    with pytest.raises(ConfigError, match="dev starts"):
        check_splits(overlapping)


def test_post_windows_take_latest_posts_before_decision():
    stock = np.array([0, 0, 0, 0, 1])
    time = np.array([10, 20, 30, 40, 15])
    ids = post_windows(
        stock, time, np.array([0, 0, 1]), np.array([35, 30, 100]), window_seconds=100, max_posts=2
    )
    assert ids.tolist() == [[1, 2], [0, 1], [-1, 4]]


def _config(**kw):
    return SampleConfig(splits=SPLITS, price_window=10, text_window_days=5, max_posts=6, min_posts=1, **kw)


def test_samples_have_all_splits_and_respect_label_dates(corpus):
    s = build_samples(corpus, _config())
    for code in (0, 1, 2):
        assert ((s["split"] == code) & (s["label"] >= 0)).sum() > 10
    resolve = s["resolve_date"].astype("datetime64[D]")
    assert (resolve[s["split"] == 0] < np.datetime64("2014-05-01")).all()
    assert (s["anchor_date"] < s["resolve_date"]).all()
    assert (s["post_age_hours"][s["post_ids"] >= 0] > 0).all()


def test_no_feature_of_a_day_depends_on_later_days(corpus):
    """Perturb every price from day D on and every post after the last decision before D."""
    cfg = _config()
    before = build_samples(corpus, cfg)
    cut = np.datetime64("2014-03-03")
    future = copy.deepcopy(corpus)
    rng = np.random.default_rng(1)
    later_prices = future.price_date >= cut
    future.price_feat[later_prices] = rng.normal(0, 0.05, (later_prices.sum(), future.price_feat.shape[1]))
    last_decision = future.price_close_time[future.price_date < cut].max()
    later_posts = future.post_time >= last_decision
    future.post_user[later_posts] = rng.integers(0, 3, later_posts.sum())
    future.post_stance[later_posts] = rng.choice([-1, 1], later_posts.sum())
    future.post_retweet[later_posts] = ~future.post_retweet[later_posts]
    after = build_samples(future, cfg)
    key = lambda s: s["stock"].astype(np.int64) * 10**6 + s["anchor_date"]
    common = np.intersect1d(key(before), key(after))
    rows_b = np.searchsorted(key(before), common)
    rows_a = np.searchsorted(key(after), common)
    early = before["anchor_date"][rows_b] < cut.astype(np.int64)
    assert early.sum() > 50
    rb, ra = rows_b[early], rows_a[early]
    for name in ("post_ids", "post_age_hours", "credibility"):
        np.testing.assert_array_equal(before[name][rb], after[name][ra], err_msg=name)
    np.testing.assert_array_equal(
        price_windows(corpus, before["price_row"][rb], 10), price_windows(future, after["price_row"][ra], 10)
    )
    # The perturbation is real: labels resolved on or after D do change.
    assert (before["label_return"][rows_b[~early]] != after["label_return"][rows_a[~early]]).any()


def test_credibility_is_point_in_time(corpus_factory):
    corpus = corpus_factory(seed=3)
    s = build_samples(corpus, _config())
    posts = s["credibility"][..., 0]  # log1p of the poster's earlier posts
    valid = s["post_ids"] >= 0
    # A poster's activity count can only grow with the decision time (until the freeze).
    train = s["split"] == 0
    assert np.isfinite(posts[valid]).all()
    first, last = np.flatnonzero(train)[[0, -1]]
    assert posts[last][valid[last]].mean() > posts[first][valid[first]].mean()
    frozen = s["split"] == 2
    assert frozen.any()


def test_xueqiu_tickers_and_markets():
    assert xueqiu_market("SH600000") == ("600000.SS", "Asia/Shanghai", "15:00")
    assert xueqiu_market("SZ000001")[0] == "000001.SZ"
    assert xueqiu_market("00700") == ("0700.HK", "Asia/Hong_Kong", "16:00")
    assert xueqiu_market(".INX")[0] == "^GSPC" and xueqiu_market("TSLA")[1] == "America/New_York"


def test_prices_from_ohlcv_match_stocknet_normalisation():
    df = pd.DataFrame(
        {
            "date": ["2021-01-04", "2021-01-05"],
            "open": [10.0, 10.5],
            "high": [11.0, 11.0],
            "low": [9.0, 9.9],
            "close": [10.0, 10.8],
            "adj_close": [5.0, 5.4],
            "volume": [100, 200],
        }
    )
    out = prices_from_ohlcv(df)
    assert len(out) == 1
    row = out.iloc[0]
    assert row["open_rel"] == pytest.approx(0.05) and row["low_rel"] == pytest.approx(-0.01)
    assert row["movement"] == pytest.approx(0.08)
