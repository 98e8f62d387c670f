/** How a runtime turns bytes into text: Node's Buffer and StringDecoder, or the web's TextDecoder. */
export interface TextCodec {
  /** A decoder for one stream, keeping a character split across reads whole. */
  decoder(): { write(bytes: Uint8Array): string };
  /** The whole body, from its parts. */
  text(parts: Uint8Array[], size: number): string;
}

/** The web's codec: what every runtime has. */
export const webCodec: TextCodec = {
  decoder() {
    const decoder = new TextDecoder();
    return { write: (bytes) => decoder.decode(bytes, { stream: true }) };
  },
  text(parts) {
    const decoder = new TextDecoder();
    let text = '';
    for (const part of parts) text += decoder.decode(part, { stream: true });
    return text + decoder.decode();
  },
};

