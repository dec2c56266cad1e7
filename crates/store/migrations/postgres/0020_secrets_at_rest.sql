-- Secrets at rest: from this version on every credential column (Twilio auth tokens, webhook
-- and custom-tool signing secrets, custom-tool headers, MCP authentication, OAuth clients,
-- tokens and flows, platform secrets) holds `enc:v1:<key id>:<AES-256-GCM sealed value>`.
-- No schema change: right after applying this migration the application seals every value
-- still stored in clear (Store::reseal_secrets), with the master key of its keyring.
SELECT 1;
