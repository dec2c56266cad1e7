-- The cascaded voice pipeline: which pipeline an agent's calls run (`realtime` or
-- `cascaded`), and its speech-to-text, chat model and text-to-speech settings as JSON
-- (`{"stt": ..., "llm": ..., "tts": ...}`). Agents saved before read as `realtime`.
ALTER TABLE agents ADD COLUMN voice_pipeline TEXT;
ALTER TABLE agents ADD COLUMN pipeline TEXT;
