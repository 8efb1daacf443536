SELECT (SELECT VALUE n FROM e WHERE get(e, 0).x > 1) AS s, get((SELECT * FROM a.b[0]), 1).c FROM 't'
