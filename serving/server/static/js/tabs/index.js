// The studio's tabs, in order. A new tab (Draw for `label_map`, Text for `text`) is one module in this folder,
// listed here; it is shown only while the chosen model has the signature its `available` asks for.

import draw from "./draw.js";
import encode from "./encode.js";
import generate from "./generate.js";
import interpolate from "./interpolate.js";
import text from "./text.js";
import translate from "./translate.js";

export const TABS = [generate, encode, interpolate, translate, draw, text];
