-- The writer adds a batch's new articles to the search index with one
-- statement at the end of the batch instead of one trigger run per
-- article (sqlite/writer.rs): FTS5 writes its pending terms out as a new
-- index segment at every statement savepoint, and every insert into
-- `articles` opens one, so a batch of N creates wrote N segments and
-- merged them again. While `deferred` is 1 the insert trigger leaves the
-- index alone; the writer sets it only inside its own open transaction and
-- puts it back to 0 before that commits, so every committed state, every
-- import and any other writer of the file see 0.
CREATE TABLE article_fts_deferred (
    one      INTEGER PRIMARY KEY CHECK (one = 1),
    deferred INTEGER NOT NULL
);

INSERT INTO article_fts_deferred (one, deferred) VALUES (1, 0);

DROP TRIGGER articles_fts_insert;

CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles
WHEN (SELECT deferred FROM article_fts_deferred WHERE one = 1) = 0
BEGIN
    INSERT INTO articles_fts (rowid, search_text) VALUES (new.id, new.search_text);
END;

-- The count triggers again, unchanged, so that they are still created
-- after the index's insert trigger. With the index's insert trigger
-- created last, a connection that reloads the schema after another
-- connection changed it (seen with SQLite 3.40 and 3.46) fails its next
-- insert into `articles` with "no such table: articles".
DROP TRIGGER article_count_insert;

CREATE TRIGGER article_count_insert AFTER INSERT ON articles BEGIN
    UPDATE article_count SET n = n + 1 WHERE one = 1;
END;

DROP TRIGGER article_count_delete;

CREATE TRIGGER article_count_delete AFTER DELETE ON articles BEGIN
    UPDATE article_count SET n = n - 1 WHERE one = 1;
END;
