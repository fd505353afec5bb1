-- v4: the few-shot examples (assistant node ids, JSON array) put into the system prompt
-- when this answer was generated ("few-shot from your own best").
ALTER TABLE nodes ADD COLUMN few_shot TEXT;
