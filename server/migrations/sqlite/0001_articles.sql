-- Articles, their tags, and the change log that feeds WatchArticles.
-- Times are microseconds since the Unix epoch (UTC).

CREATE TABLE articles (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    title       TEXT    NOT NULL,
    content     TEXT    NOT NULL,
    author      TEXT    NOT NULL,
    -- Comma-separated; tags are [a-z0-9-] so a comma never occurs in one.
    tags        TEXT    NOT NULL,
    -- Lower-cased "title \x1f content", folded in Rust (Unicode-aware).
    search_text TEXT    NOT NULL,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL,
    version     INTEGER NOT NULL
);

CREATE INDEX articles_newest ON articles (create_time DESC, id DESC);

CREATE TABLE article_tags (
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    tag        TEXT    NOT NULL,
    PRIMARY KEY (article_id, tag)
) WITHOUT ROWID;

CREATE INDEX article_tags_by_tag ON article_tags (tag, article_id);

-- One row per committed change; `seq` is the watch sequence. AUTOINCREMENT
-- guarantees a sequence is never reused, even after old rows are pruned.
CREATE TABLE article_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL CHECK (kind IN ('created', 'updated', 'deleted')),
    article_id  INTEGER NOT NULL,
    title       TEXT,
    content     TEXT,
    author      TEXT,
    tags        TEXT,
    create_time INTEGER,
    update_time INTEGER,
    version     INTEGER,
    old_tags    TEXT
);
