-- The number of articles, kept beside the sequence counter (issue 12): an
-- unfiltered ListArticles and the health count read it instead of counting
-- the whole primary-key index (about 30 ms at 200,000 articles, growing with
-- the data). Every write already updates the `article_seq` row as its commit
-- tail, so it adds its delta (+1 create, -1 delete, +n import) in that same
-- statement: no new lock, no new contention. A snapshot that sees a write
-- sees its delta, so the count always matches the rows a query sees.
--
-- Replicas of an older version do not keep it: upgrade every replica past
-- this migration before writing through it again.
ALTER TABLE article_seq ADD COLUMN articles BIGINT NOT NULL DEFAULT 0;

UPDATE article_seq SET articles = (SELECT COUNT(*) FROM articles);
