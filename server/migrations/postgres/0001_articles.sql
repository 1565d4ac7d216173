-- Articles, their tags, and the change log that feeds WatchArticles
-- (PostgreSQL). Times are microseconds since the Unix epoch (UTC), as in
-- the SQLite schema. See `server/src/article/postgres.rs` for the design.

CREATE TABLE articles (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title       TEXT   NOT NULL,
    content     TEXT   NOT NULL,
    author      TEXT   NOT NULL,
    -- Comma-separated; tags are [a-z0-9-] so a comma never occurs in one.
    tags        TEXT   NOT NULL,
    -- Lower-cased "title \x1f content", folded in Rust (Unicode-aware).
    search_text TEXT   NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    version     BIGINT NOT NULL
);

CREATE INDEX articles_newest ON articles (create_time DESC, id DESC);

CREATE TABLE article_tags (
    article_id BIGINT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    tag        TEXT   NOT NULL,
    PRIMARY KEY (article_id, tag)
);

CREATE INDEX article_tags_by_tag ON article_tags (tag, article_id);

-- The one counter of watch sequences: the newest sequence committed. A
-- writer takes its numbers from it as the last statement before COMMIT, so
-- its row lock orders the commits (see postgres.rs).
CREATE TABLE article_seq (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    seq BIGINT  NOT NULL
);

INSERT INTO article_seq (one, seq) VALUES (TRUE, 0);

-- One row per committed change; `seq` is the watch sequence. It is NULL
-- only for the rows of an import whose transaction has not committed yet
-- (numbered by `ord` until then), which no other transaction can see.
CREATE TABLE article_events (
    seq         BIGINT UNIQUE,
    ord         BIGINT,
    kind        TEXT   NOT NULL CHECK (kind IN ('created', 'updated', 'deleted')),
    article_id  BIGINT NOT NULL,
    title       TEXT,
    content     TEXT,
    author      TEXT,
    tags        TEXT,
    create_time BIGINT,
    update_time BIGINT,
    version     BIGINT,
    old_tags    TEXT
);

CREATE INDEX article_events_pending ON article_events (ord) WHERE seq IS NULL;
