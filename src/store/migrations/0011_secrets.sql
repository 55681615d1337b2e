-- Programs saved before `user`/`allow_root` existed keep running as they did: a warden
-- running as root now refuses to start a program as root unless it says allow_root, so
-- every existing program without a user says so explicitly (visible, and removable once
-- a user is set). Specs are JSON; their sealed secret fields are untouched.
UPDATE programs
SET spec = json_set(spec, '$.allow_root', json('true'))
WHERE json_extract(spec, '$.user') IS NULL;
