-- Indexes that keep search, the tag filter and deep pages from reading
-- every article (issue 12).

-- Substring search: a GIN trigram index over the lower-cased search text,
-- used by `search_text LIKE '%needle%'` (postgres.rs). pg_trgm is a trusted
-- extension: a database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX articles_search_trgm ON articles USING gin (search_text gin_trgm_ops);

-- The tag filter, newest first: each tag row carries its article's
-- create_time (which never changes), so a tag's page and count are a walk
-- of one index range.
ALTER TABLE article_tags ADD COLUMN create_time BIGINT NOT NULL DEFAULT 0;

UPDATE article_tags t SET create_time = a.create_time FROM articles a WHERE a.id = t.article_id;

CREATE INDEX article_tags_newest ON article_tags (tag, create_time DESC, article_id DESC);

DROP INDEX article_tags_by_tag;
