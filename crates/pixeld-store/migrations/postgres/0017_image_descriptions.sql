-- An image's AI description (alt text and tags, JSON), written when a user asks for one. It
-- lives in the image's row, so it is deleted with the image (within the uploads window).
ALTER TABLE images ADD COLUMN description TEXT;
