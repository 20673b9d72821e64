"""Hand-made records in the original schemas of every dataset (a few each), file names as published."""

CSQA = [
    {"answerKey": "B", "id": "fx-csqa-1", "question": {"question_concept": "door", "choices": [
        {"label": "A", "text": "bank"}, {"label": "B", "text": "library"}, {"label": "C", "text": "mall"},
        {"label": "D", "text": "house"}, {"label": "E", "text": "car"}],
        "stem": "Where would you borrow a book?"}},
    {"answerKey": "E", "id": "fx-csqa-2", "question": {"question_concept": "sun", "choices": [
        {"label": "A", "text": "night"}, {"label": "B", "text": "moon"}, {"label": "C", "text": "cave"},
        {"label": "D", "text": "ocean"}, {"label": "E", "text": "sky"}],
        "stem": "Where is the sun at noon?"}},
]
OBQA = [
    {"id": "fx-obqa-1", "question": {"stem": "Plants need", "choices": [
        {"text": "sunlight", "label": "A"}, {"text": "darkness", "label": "B"},
        {"text": "noise", "label": "C"}, {"text": "plastic", "label": "D"}]}, "answerKey": "A"},
]
QUAREL = [
    {"id": "QuaRel_V1_Fx_0001", "answer_index": 1,
     "question": "Mike was snowboarding on the snow and hit a piece of ice. He went much faster on the ice "
                 "because _____ is smoother. (A) snow (B) ice",
     "logical_forms": ["qrel(speed, higher, world2) -> qrel(smoothness, higher, world2) ; qrel(smoothness, higher, world1)"],
     "world_literals": {"world1": ["snow"], "world2": ["ice"]}},
    {"id": "QuaRel_V1_Fx_0002", "answer_index": 0,
     "question": "A rock rolls farther on a road than on grass. Which surface has less friction? (A) road (B) grass",
     "logical_forms": ["qrel(distance, higher, world1) -> qrel(friction, lower, world1) ; qrel(friction, lower, world2)"],
     "world_literals": {"world1": ["road"], "world2": ["grass"]}},
]
GSM8K = [
    {"question": "Tom has 3 boxes of 4 pens. He gives away 5 pens. How many pens does he have left?",
     "answer": "Tom has 3 * 4 = <<3*4=12>>12 pens.\nHe has 12 - 5 = <<12-5=7>>7 pens left.\n#### 7"},
    {"question": "A shirt costs $1,200 and is discounted by $300. What is the price?",
     "answer": "The price is 1,200 - 300 = <<1200-300=900>>900 dollars.\n#### 900"},
]
GSM8K_SOCRATIC = [
    {"question": GSM8K[0]["question"],
     "answer": "How many pens does Tom have? ** Tom has 3 * 4 = <<3*4=12>>12 pens.\n"
               "How many pens are left? ** He has 12 - 5 = <<12-5=7>>7 pens left.\n#### 7"},
]
SVAMP = [
    {"ID": "fx-1", "Body": "Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on each pack",
     "Question": "How much do you have to pay to buy each pack?", "Equation": "( 76.0 - 25.0 )",
     "Answer": 51.0, "Type": "Subtraction"},
    {"ID": "fx-2", "Body": "Jack had 3 pizzas shared among 6 friends.", "Question": "How much pizza did each get?",
     "Equation": "( 3.0 / 6.0 )", "Answer": 0.5, "Type": "Common-Division"},
]
STRATEGYQA = [
    {"qid": "fx1", "term": "Ice", "description": "frozen water", "question": "Can ice float on water?",
     "answer": True, "facts": ["Ice is less dense than water."], "decomposition": ["What is the density of ice?",
                                                                                   "Is #1 less than water's?"],
     "evidence": []},
]
SST2_TSV = "sentence\tlabel\nit 's a charming and often affecting journey . \t1\nunflinchingly bleak and desperate \t0\n"
IMDB_TSV = ('Sentiment\tText\nPositive\t"A fine film.<br /><br />Great acting, ""superb"" cast."\n'
            'Negative\tDull and slow.\n')
ANLI = [
    {"uid": "fx-anli-1", "context": "The cat sat on the mat.", "hypothesis": "A cat is on a mat.", "label": "e",
     "model_label": "e", "emturk": False, "genre": "", "reason": "", "tag": ""},
    {"uid": "fx-anli-2", "context": "The cat sat on the mat.", "hypothesis": "The dog sat.", "label": "n",
     "model_label": "e", "emturk": False, "genre": "", "reason": "", "tag": ""},
]

FIXTURE_FILES = {
    "commonsenseqa/train_rand_split.jsonl": CSQA,
    "commonsenseqa/dev_rand_split.jsonl": CSQA,
    "openbookqa/Main/train.jsonl": OBQA,
    "openbookqa/Main/dev.jsonl": OBQA,
    "openbookqa/Main/test.jsonl": OBQA,
    "quarel/quarel-v1-train.jsonl": QUAREL,
    "quarel/quarel-v1-dev.jsonl": QUAREL,
    "quarel/quarel-v1-test.jsonl": QUAREL,
    "gsm8k/train.jsonl": GSM8K,
    "gsm8k/test.jsonl": GSM8K,
    "gsm8k/train_socratic.jsonl": GSM8K_SOCRATIC,
    "gsm8k/test_socratic.jsonl": GSM8K_SOCRATIC,
    "svamp/SVAMP.json": SVAMP,
    "strategyqa/train.json": STRATEGYQA,
    "strategyqa/dev.json": STRATEGYQA,
    "sst2/dev.tsv": SST2_TSV,
    "imdb_contrast/test_original.tsv": IMDB_TSV,
    "imdb_contrast/test_contrast.tsv": IMDB_TSV,
    "imdb_contrast/dev_original.tsv": IMDB_TSV,
    "imdb_contrast/dev_contrast.tsv": IMDB_TSV,
    "anli/R3/dev.jsonl": ANLI,
    "anli/R3/test.jsonl": ANLI,
}
