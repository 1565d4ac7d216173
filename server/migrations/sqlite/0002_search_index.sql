-- Indexes that keep search, the tag filter and deep pages from reading
-- every article (issue 12).

-- Substring search: a trigram index over the lower-cased search text. It
-- stores no copy of the text (`content='articles'`) and no positions
-- (`detail='none'`): a query ANDs the needle's trigrams to find candidates,
-- and `instr` then decides exactly (sqlite.rs). Kept in step by triggers, in
-- the writer's own transaction.
CREATE VIRTUAL TABLE articles_fts USING fts5(
    search_text,
    content = 'articles',
    content_rowid = 'id',
    tokenize = 'trigram case_sensitive 1',
    detail = 'none'
);

CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN
    INSERT INTO articles_fts (rowid, search_text) VALUES (new.id, new.search_text);
END;

CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, search_text)
    VALUES ('delete', old.id, old.search_text);
END;

CREATE TRIGGER articles_fts_update AFTER UPDATE OF search_text ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, search_text)
    VALUES ('delete', old.id, old.search_text);
    INSERT INTO articles_fts (rowid, search_text) VALUES (new.id, new.search_text);
END;

INSERT INTO articles_fts (articles_fts) VALUES ('rebuild');

-- The tag filter, newest first: each tag row carries its article's
-- create_time (which never changes), so a tag's page and count are a walk
-- of one index range.
ALTER TABLE article_tags ADD COLUMN create_time INTEGER NOT NULL DEFAULT 0;

UPDATE article_tags
SET create_time = (SELECT a.create_time FROM articles a WHERE a.id = article_tags.article_id);

CREATE INDEX article_tags_newest ON article_tags (tag, create_time DESC, article_id DESC);

DROP INDEX article_tags_by_tag;

-- The unfiltered total, which every unfiltered page carries: one row kept
-- by triggers instead of counting the whole `articles_newest` index per
-- page. (SQLite has one writer, so the row is never contended.)
CREATE TABLE article_count (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    n   INTEGER NOT NULL
);

INSERT INTO article_count (one, n) SELECT 1, COUNT(*) FROM articles;

CREATE TRIGGER article_count_insert AFTER INSERT ON articles BEGIN
    UPDATE article_count SET n = n + 1 WHERE one = 1;
END;

CREATE TRIGGER article_count_delete AFTER DELETE ON articles BEGIN
    UPDATE article_count SET n = n - 1 WHERE one = 1;
END;
