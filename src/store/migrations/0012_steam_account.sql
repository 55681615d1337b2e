-- The Steam account SteamCMD logs in with (`install.steam_user`): its password, sealed like
-- the secret fields of definitions (`spec` is JSON whose `password` is `sealed1:…`), so
-- `warden secrets rotate` reseals it with the rest.
CREATE TABLE steam_accounts (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL
);
